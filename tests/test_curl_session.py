"""docs/api.md's curl session, taken out of the page and run against live processes.

Issue #9: no document showed how an invited agent gets to a working socket. The session in
docs/api.md does (invite, the mail from the development mailbox, set-password, sign in, act as
the agent, a socket token); this test runs that block as written, against a real ``web`` process
and a real worker (which sends the invitation's mail), with every ``curl`` made to fail on an
HTTP error status, then joins ``/agent`` on a real gateway with the token the session got. The
only changes made to the block: the port, and this checkout's interpreter for ``.venv/bin/python``.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
import socketio

from server.accounts.tables import User
from server.tenancy.tables import ProjectMember
from tests.pipeline.faults import worker
from tests.processes import PYTHON, ROOT, free_port, http_status, running, wait_until
from tests.realtime.conftest import launch_gateway

pytestmark = pytest.mark.slow

# Prepended to the block: curl fails on HTTP errors (and, with pipefail, so does any pipeline).
STRICT = """set -euo pipefail
curl() { command curl --fail-with-body --show-error "$@"; }
"""
REPORT = '\nprintf "\\nRT_TOKEN=%s\\nPROJECT=%s\\n" "$RT_TOKEN" "$PROJECT"\n'


def curl_session() -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    section = text.split("\n## A session with curl\n", 1)[1]
    return section.split("```sh\n", 1)[1].split("\n```\n", 1)[0]


def test_the_block_is_the_invited_agent_session() -> None:
    block = curl_session()
    for step in (
        "/invitations",
        "server mailbox",
        "/api/v1/auth/set-password",
        "/api/v1/auth/login",
        "/api/v1/realtime/token",
        "x-csrf-token: $AGENT_CSRF",
    ):
        assert step in block, step


async def test_the_documented_curl_session_runs(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**subprocess_env, "WEB_PORT": str(port), "PATH": f"{Path(PYTHON).parent}:{subprocess_env['PATH']}"}
    script = curl_session().replace("http://localhost:8000", f"http://127.0.0.1:{port}")
    script = script.replace(".venv/bin/python", PYTHON)
    with (
        running([PYTHON, "-m", "server", "web"], env, tmp_path / "web.log"),
        worker(env, tmp_path),
    ):
        await asyncio.to_thread(
            wait_until,
            lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200,
            timeout=60,
            what="web /readyz",
        )
        result = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", STRICT + script + REPORT],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    lines = result.stdout.splitlines()
    assert result.stdout.count('{"items":[],"next_cursor":null}') == 2, result.stdout  # cookie, then key
    assert '"name":"Acme"' in result.stdout and '"role":"agent"' in result.stdout, result.stdout
    values = dict(line.split("=", 1) for line in lines[-2:])
    project_id = int(values["PROJECT"])

    agent = await User.objects().get(User.email == "agent@example.com")
    assert agent is not None and agent.name == "Ana"
    membership = await ProjectMember.objects().get(
        (ProjectMember.project == project_id) & (ProjectMember.user == agent.id)
    )
    assert membership is not None and membership.role == ProjectMember.ProjectRole.AGENT.value

    # The token is a working socket: /agent joins with it.
    gateway = launch_gateway(subprocess_env, tmp_path / "gateway.log")
    sio = socketio.AsyncClient(reconnection=False)
    try:
        await sio.connect(
            gateway.url,
            namespaces=["/agent"],
            auth={"token": values["RT_TOKEN"]},
            transports=["websocket"],
            wait_timeout=10,
        )
        assert "/agent" in sio.namespaces
        answer = await sio.call("sync", {"conversations": {}}, namespace="/agent", timeout=10)
        assert answer == {"conversations": {}}
    finally:
        await sio.disconnect()
        gateway.process.terminate()
        assert gateway.process.wait(timeout=20) == 0, gateway.output()[-3000:]
