"""Schemathesis over /schema against a real web process with --checks all (bounded examples):
no server error, no response that breaks the schema, no accepted input the schema refuses."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from server.accounts.tables import User
from server.tenancy.apikeys import create_api_key
from server.tenancy.queries import actor_for
from tests import factories as f
from tests.processes import PYTHON, free_port, http_status, running, wait_until

pytestmark = pytest.mark.slow


async def _admin_key() -> str:
    admin = await f.make_user(email="fuzz-admin@example.com", role=User.GlobalRole.ADMIN)
    project = await f.make_project()
    visitor = await f.make_visitor(project)
    conversation = await f.make_conversation(project, visitor, last_seq=1)
    await f.make_message(conversation, seq=1)
    created = await create_api_key(
        await actor_for(admin), name="fuzz", project_id=None, read_only=False, expires_at=None
    )
    return created.secret


async def test_schemathesis_finds_no_server_error(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    secret = await _admin_key()
    port = free_port()
    env = {**subprocess_env, "WEB_PORT": str(port)}
    with running([PYTHON, "-m", "server", "web"], env, tmp_path / "web.log"):
        await asyncio.to_thread(
            wait_until, lambda: http_status(f"http://127.0.0.1:{port}/healthz") == 200, timeout=30, what="web"
        )
        result = await asyncio.to_thread(
            subprocess.run,
            [
                str(Path(PYTHON).with_name("schemathesis")),
                "run",
                f"http://127.0.0.1:{port}/schema/openapi.json",
                "--checks",
                "all",
                # positive_data_acceptance ("a schema-valid request must be accepted") cannot hold
                # for rules a schema does not express: JSON Schema counts 2.0 as an integer while
                # the API refuses it on purpose (issue #10, item 5), cursors must be ones the API
                # issued, after_seq excludes before_seq, expiries must lie ahead, a message must
                # hold more than white space, an admin cannot deactivate themself. Every other
                # check runs, negative_data_rejection included.
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                "15",
                "--seed",
                "1",
                "--header",
                f"Authorization: Bearer {secret}",
                # Deleting the only project or the key's owner mid-run only makes the rest 404.
                "--exclude-method",
                "DELETE",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,  # schemathesis keeps its state in ./.schemathesis
            timeout=400,
            check=False,
        )
    web_log = (tmp_path / "web.log").read_text()
    report = tmp_path / "schemathesis.log"
    report.write_text(result.stdout + "\n=== web log ===\n" + web_log)
    assert result.returncode == 0, f"see {report}\n" + result.stdout[-3000:] + result.stderr[-1000:]
    assert "Traceback" not in web_log, web_log[-4000:]
