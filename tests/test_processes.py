"""The Procfile's processes and ``make dev``'s launcher, run for real."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis

from server.embedded import with_database
from tests.processes import (
    PYTHON,
    free_port,
    http_status,
    processes_mentioning,
    running,
    start,
    stop,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("command", "overrides", "expected"),
    [
        (["-m", "server", "web"], {"DATABASE_URL": ""}, "DATABASE_URL is not set"),
        (["-m", "server", "web"], {"WEB_PORT": "eighty"}, "WEB_PORT must be an integer"),
        (["-m", "server", "realtime"], {"REDIS_URL": "http://x"}, "REDIS_URL must be a URL starting with"),
        (
            ["-m", "server", "migrate"],
            {"DATABASE_URL": "mysql://x"},
            "DATABASE_URL must be a URL starting with",
        ),
        (["-m", "saq", "tasks.worker.settings"], {"SECRET_KEY": "short"}, "SECRET_KEY must be at least 32"),
        (["-m", "server", "web"], {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of"),
    ],
)
def test_a_bad_setting_stops_the_process_with_one_line(
    subprocess_env: dict[str, str], command: list[str], overrides: dict[str, str], expected: str
) -> None:
    result = subprocess.run(
        [PYTHON, *command],
        env={**subprocess_env, **overrides},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_web_realtime_and_worker_run_and_stop_on_sigterm(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    web_port, realtime_port = free_port(), free_port()
    env = {**subprocess_env, "WEB_PORT": str(web_port), "REALTIME_PORT": str(realtime_port)}
    heartbeat = redis.Redis.from_url(env["REDIS_URL"])
    with (
        running([PYTHON, "-m", "server", "web"], env, tmp_path / "web.log") as web,
        running([PYTHON, "-m", "server", "realtime"], env, tmp_path / "realtime.log") as realtime,
        running([PYTHON, "-m", "saq", "tasks.worker.settings"], env, tmp_path / "worker.log") as worker,
    ):
        wait_until(
            lambda: http_status(f"http://127.0.0.1:{web_port}/readyz") == 200, timeout=30, what="web /readyz"
        )
        wait_until(
            lambda: http_status(f"http://127.0.0.1:{realtime_port}/healthz") == 200,
            timeout=30,
            what="realtime",
        )
        assert http_status(f"http://127.0.0.1:{realtime_port}/nope") == 404
        wait_until(
            lambda: heartbeat.get("parley:worker:heartbeat") is not None, timeout=30, what="worker heartbeat"
        )
        # A socket open at SIGTERM is told goodbye (close 1000) before the gateway exits.
        goodbye = asyncio.run(_close_seen_on_sigterm(realtime, realtime_port))
        assert goodbye == (1000, "server shutting down"), goodbye
        codes = [realtime.wait(timeout=20), stop(web), stop(worker)]
        # Exit status 0, not -SIGTERM: each process handled the signal and stopped by itself.
        assert codes == [0, 0, 0], codes
    heartbeat.close()


async def _close_seen_on_sigterm(realtime: subprocess.Popen[bytes], port: int) -> tuple[Any, str | None]:
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url, autoping=False) as ws:
        await ws.receive_str()  # the Engine.IO handshake: the socket is open
        realtime.send_signal(signal.SIGTERM)
        message = await asyncio.wait_for(ws.receive(), 20)
        while message.type is aiohttp.WSMsgType.TEXT:  # a ping may come first
            message = await asyncio.wait_for(ws.receive(), 20)
        return message.data, message.extra


def _dev_env(
    subprocess_env: dict[str, str], data_dir: Path, web_port: int, realtime_port: int
) -> dict[str, str]:
    env = {
        key: value
        for key, value in subprocess_env.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")
    }
    return {
        **env,
        "PARLEY_DATA_DIR": str(data_dir),
        "WEB_PORT": str(web_port),
        "REALTIME_PORT": str(realtime_port),
    }


async def _count_users(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        count: int = await connection.fetchval("SELECT count(*) FROM parley_user")
        return count
    finally:
        await connection.close()


DEV_STARTUP_SECONDS = 240
"""A generous deadline: four processes, migrations and two servers start at once, on a loaded machine."""


def _wait_dev_ready(dev: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Poll ``url`` until it answers 200; fail at once (with the log) if the launcher exited."""

    def ready() -> bool:
        assert dev.poll() is None, f"make dev exited with {dev.returncode}:\n{log.read_text()[-4000:]}"
        return http_status(url) == 200

    wait_until(ready, timeout=DEV_STARTUP_SECONDS, what=url)


def _session_of(pid: int) -> tuple[int, int]:
    """(process group, session) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[2]), int(fields[3])


def _embedded_server_pids(data_dir: Path) -> dict[str, int]:
    found = {}
    for line in processes_mentioning(str(data_dir)):
        pid, _, command = line.partition(": ")
        if "valkey-server" in command:
            found["valkey"] = int(pid)
        elif "postgres" in command and " -D " in f" {command}" and "pg_ctl" not in command:
            found.setdefault("postgres", int(pid))
    return found


def test_dev_starts_everything_embedded_stops_cleanly_and_keeps_data(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    web_port, realtime_port = free_port(), free_port()
    env = _dev_env(subprocess_env, data_dir, web_port, realtime_port)
    database_url = with_database(f"postgresql://postgres:@/postgres?host={data_dir}/postgres", "parley")
    redis_url = f"unix://{data_dir}/valkey/valkey.sock"

    # First run: stopped like Ctrl-C in a terminal (SIGINT to the whole process group).
    dev = start([PYTHON, "-m", "server", "dev"], env, tmp_path / "dev1.log")
    try:
        _wait_dev_ready(dev, f"http://127.0.0.1:{web_port}/readyz", tmp_path / "dev1.log")
        _wait_dev_ready(dev, f"http://127.0.0.1:{realtime_port}/healthz", tmp_path / "dev1.log")
        # The embedded servers are outside the launcher's process group and session (the
        # terminal's, in real life), so Ctrl-C cannot reach them.
        servers = _embedded_server_pids(data_dir)
        assert sorted(servers) == ["postgres", "valkey"], processes_mentioning(str(data_dir))
        for name, pid in servers.items():
            group, session = _session_of(pid)
            assert dev.pid not in (group, session), (name, group, session, dev.pid)
        admin = subprocess.run(
            [PYTHON, "-m", "server", "createadmin", "--email", "keep@example.com"],
            input="a-good-password\n",
            text=True,
            capture_output=True,
            check=False,
            env={**env, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": "k" * 40},
        )
        assert admin.returncode == 0, admin.stderr
        queued = redis.Redis.from_url(redis_url)
        queued.set("parley:test:survives", "yes")
        queued.close()
    finally:
        code = stop(dev, signal.SIGINT, group=True, timeout=60)
    log = (tmp_path / "dev1.log").read_text()
    assert code == 0, log
    assert "embedded servers stopped" in log
    # The servers stopped after the processes had drained: a normal stop logs no error.
    assert "ERROR" not in log and "Traceback" not in log, log[-6000:]
    assert processes_mentioning(str(data_dir)) == []
    assert (data_dir / "secret_key").exists()

    # Second run, stopped with SIGTERM to the launcher only: the data is still there.
    dev = start([PYTHON, "-m", "server", "dev"], env, tmp_path / "dev2.log")
    try:
        _wait_dev_ready(dev, f"http://127.0.0.1:{web_port}/readyz", tmp_path / "dev2.log")
        assert asyncio.run(_count_users(database_url)) == 1
        persisted = redis.Redis.from_url(redis_url)
        assert persisted.get("parley:test:survives") == b"yes"
        persisted.close()
    finally:
        code = stop(dev, signal.SIGTERM, timeout=60)
    log = (tmp_path / "dev2.log").read_text()
    assert code == 0, log
    assert "ERROR" not in log and "Traceback" not in log, log[-6000:]
    assert processes_mentioning(str(data_dir)) == []


def test_dev_says_why_when_a_port_is_taken(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _dev_env(subprocess_env, tmp_path / "data", port, free_port())
        result = subprocess.run(
            [PYTHON, "-m", "server", "dev"], env=env, capture_output=True, text=True, timeout=90, check=False
        )
    assert result.returncode == 1
    assert f"web cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert processes_mentioning(str(tmp_path / "data")) == []
