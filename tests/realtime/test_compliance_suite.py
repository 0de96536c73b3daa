"""Socket.IO's own compliance suite against the gateway's protocol layer (websocket cases).

The suite (``shared/socketio-protocol-test-suite``, MIT, unchanged) is copied and installed by
``make test-deps`` into ``build/socketio-protocol-test-suite``. This test writes a copy of its
``test-suite.js`` whose ``URL`` constant points at the harness's port (the one line patched),
starts :mod:`tests.realtime.compliance_harness` and runs mocha on every case but the
long-polling and upgrade ones (the gateway offers websocket only; docs/protocol.md lists them).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.processes import PYTHON, ROOT, free_port, start, stop

pytestmark = pytest.mark.slow

SUITE = ROOT / "build" / "socketio-protocol-test-suite"
SKIPPED = "HTTP long-polling|upgrade"
"""mocha --grep (inverted): the cases of transports the gateway does not offer."""
WEBSOCKET_CASES = 22
"""Of the suite's 32 cases, those that remain: every one must pass."""


def _patched_suite(port: int) -> Path:
    source = (SUITE / "test-suite.js").read_text()
    patched, count = re.subn(
        r'^const URL = "http://localhost:3000";$',
        f'const URL = "http://127.0.0.1:{port}";',
        source,
        flags=re.M,
    )
    assert count == 1, "the suite's URL constant moved: update the patch in this test"
    path = SUITE / f"test-suite.port-{port}.js"
    path.write_text(patched)
    return path


async def test_every_websocket_case_of_the_socket_io_suite_passes(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    if shutil.which("node") is None or not (SUITE / "node_modules" / "mocha").is_dir():
        pytest.fail(f"the Socket.IO compliance suite is not installed in {SUITE}: run make test-deps")
    port = free_port()
    log = tmp_path / "harness.log"
    harness = start([PYTHON, "-m", "tests.realtime.compliance_harness", str(port)], subprocess_env, log)
    suite = _patched_suite(port)
    try:
        deadline = time.monotonic() + 20
        while "listening" not in log.read_text(errors="replace"):
            assert harness.poll() is None and time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.05)
        process = await asyncio.create_subprocess_exec(
            str(SUITE / "node_modules" / ".bin" / "mocha"),
            suite.name,
            "--grep",
            SKIPPED,
            "--invert",
            "--reporter",
            "json",
            # The suite's own settings are timing-bound (pings every 300 ms, a 1 s connect
            # timeout), and this machine is shared: a case may be tried twice, never more.
            "--retries",
            "1",
            cwd=SUITE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 120)
    finally:
        suite.unlink()
        stop(harness)
    text = output.decode(errors="replace")
    report = json.loads(text[text.index("{") :])
    failures = [f"{case['fullTitle']}: {case['err'].get('message')}" for case in report["failures"]]
    assert not failures, "\n".join(failures)
    assert report["stats"]["passes"] == WEBSOCKET_CASES, report["stats"]
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text()
