"""A Redis outage in the web process is logged as an outage, not as a warning per failed request.

Issue #9: with Redis down the web process logged hundreds of warnings in two seconds. Here a real
``web`` process runs on a Redis of its own (a ``valkey-server`` from tests/redis_servers.py), which
is stopped while requests keep coming (each answered 503) and then started again: the log says
once that Redis is down, at most once per 10 s while it stays down, and once that it is back.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import make_project, make_visitor
from tests.processes import PYTHON, free_port, http_status, running, wait_until
from tests.realtime.helpers import visitor_auth
from tests.redis_servers import ValkeyNode

pytestmark = pytest.mark.slow

FAILED_REQUESTS = 60


def _lines(log: Path, text: str) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if text in line]


async def test_a_redis_outage_is_logged_once_then_every_10s_then_once_at_the_end(
    subprocess_env: dict[str, str], settings: Any, tmp_path: Path
) -> None:
    project = await make_project()
    visitor = await make_visitor(project)
    token = visitor_auth(settings, project.id, visitor.uid)["token"]
    await asyncio.to_thread(_outage, subprocess_env, token, tmp_path)


def _outage(subprocess_env: dict[str, str], token: str, tmp_path: Path) -> None:
    """A web process on a Redis of its own; the Redis stopped under 60 requests, then started."""
    node = ValkeyNode(port=free_port(), directory=tmp_path / "redis", args=["--save", ""])
    node.start()
    port = free_port()
    url = f"redis://127.0.0.1:{node.port}/0"
    env = {**subprocess_env, "WEB_PORT": str(port), "REDIS_URL": url, "QUEUE_REDIS_URL": url}
    env["WEB_ACCESS_LOG"] = "false"  # the log holds only what this test counts
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    try:
        with running([PYTHON, "-m", "server", "web"], env, log):
            wait_until(lambda: http_status(f"{base}/readyz") == 200, timeout=60, what="web /readyz")
            node.stop()
            started = time.monotonic()
            statuses = []
            with httpx.Client(base_url=base, timeout=10) as http:
                for index in range(FAILED_REQUESTS):
                    # A login (its rate limit lives in Redis) and a visitor's message (the
                    # send path's mailbox): both need Redis.
                    if index % 2:
                        answer = http.post(
                            "/api/v1/auth/login",
                            json={"email": "a@example.com", "password": "wrong-password"},
                        )
                    else:
                        answer = http.post(
                            "/api/widget/v1/messages",
                            json={"body": f"while down #{index}"},
                            headers={"authorization": f"Bearer {token}"},
                        )
                    statuses.append(answer.status_code)
            assert set(statuses) == {503}, statuses
            down_for = time.monotonic() - started
            node.start()

            def sent_again() -> bool:
                answer = httpx.post(
                    f"{base}/api/widget/v1/messages",
                    json={"body": "back"},
                    headers={"authorization": f"Bearer {token}"},
                    timeout=10,
                )
                return answer.status_code == 202

            wait_until(sent_again, timeout=30, what="a message accepted again")
            went_down = len(_lines(log, "is unavailable"))
            wait_until(
                lambda: len(_lines(log, "available again")) == went_down,
                timeout=30,
                what="the end of every outage to be logged",
            )
    finally:
        node.stop()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-4000:]
    assert "backing service unreachable" not in text
    assert "Redis unreachable" not in text
    errors = [line for line in text.splitlines() if re.search(r"\bERROR\b", line)]
    # One line per thing that noticed (requests, the send path), when the outage started.
    assert 1 <= len(errors) <= 2 and all("Redis" in e and "is unavailable" in e for e in errors), errors
    repeats = _lines(log, "still unavailable")
    assert len(repeats) <= len(errors) * (int((time.monotonic() - started) // 10) + 1), repeats
    assert len(_lines(log, "available again")) == len(errors)
    # Sixty failed requests, a handful of lines: not one per request.
    assert len(errors) + len(repeats) + len(errors) < FAILED_REQUESTS // 10, (down_for, text[-4000:])
