"""The official npm socket.io-client 4.8 works unmodified against the gateway."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from server.tenancy.tables import ProjectMember
from tests.factories import make_member, make_project, make_user
from tests.realtime.conftest import GatewayProcess
from tests.realtime.helpers import agent_auth, visitor_auth

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parent / "node"


async def _run(*command: str, within: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), within)
    return await process.wait(), output.decode(errors="replace")


@pytest.fixture(scope="session")
def socket_io_client() -> Path:
    """The official client, installed by ``make test`` (``npm ci`` from package-lock.json).

    Missing is a failure, not a skip: a run that cannot drive the real client proves nothing
    about compatibility with it.
    """
    if shutil.which("node") is None:
        pytest.fail(
            "Node.js is needed for the socket.io-client test: install nodejs and npm, then make test-deps"
        )
    if not (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        pytest.fail(f"socket.io-client is not installed in {NODE_DIR}: run make test-deps (npm ci)")
    return NODE_DIR / "client.mjs"


async def test_official_js_client(socket_io_client: Path, gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    code, output = await _run(
        "node",
        str(socket_io_client),
        gateway.url,
        visitor_auth(settings, project.id, "v_js")["token"],
        agent_auth(settings, user.id)["token"],
        within=30,
    )
    assert code == 0, output
    result = json.loads(output.strip().splitlines()[-1])["result"]
    assert result["refused"] == {"message": "malformed token", "data": {"code": "invalid_token"}}
    assert result["same_engine"] is True and result["transport"] == "websocket"
    assert result["navigate_ack"] == {"ok": True}
    assert result["navigated"] == {"visitor_uid": "v_js", "url": "https://shop.example/js", "title": "JS"}
    assert result["rtt"]["client_ack"] == ["pong from js"]
    assert result["unknown"]["error"]["code"] == "unknown_event"
