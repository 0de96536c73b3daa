"""Real gateway processes for the realtime tests, and official Socket.IO clients to talk to them."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.processes import PYTHON, free_port, http_status, start, stop

FAST_ENV = {
    "REALTIME_PING_INTERVAL_MS": "1000",
    "REALTIME_PING_TIMEOUT_MS": "3000",
    "REALTIME_PRESENCE_GRACE_MS": "1000",
    "REALTIME_HEARTBEAT_MS": "1000",
    "LOG_LEVEL": "WARNING",
}


@dataclass
class GatewayProcess:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def launch_gateway(env: dict[str, str], log: Path, **extra: str) -> GatewayProcess:
    full_env = {**env, **FAST_ENV, "REALTIME_PORT": str(free_port()), **extra}
    port = int(full_env["REALTIME_PORT"])  # a restart may ask for the port of the one it replaces
    process = start([PYTHON, "-m", "server", "realtime"], full_env, log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited with {process.returncode}:\n{log.read_text()}")
        if (
            "listening on" in log.read_text(errors="replace")
            and http_status(f"http://127.0.0.1:{port}/healthz") == 200
        ):
            return GatewayProcess(port, process, log, full_env)
        time.sleep(0.05)
    stop(process)
    raise AssertionError(f"gateway did not start:\n{log.read_text()}")


@pytest.fixture
def gateway_factory(
    subprocess_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def make(**extra: str) -> GatewayProcess:
        gateway = launch_gateway(subprocess_env, tmp_path / f"gateway{len(started)}.log", **extra)
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        code = stop(gateway.process)
        output = gateway.output()
        assert "Segmentation fault" not in output and code in (0, -9), output[-3000:]


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayProcess]) -> GatewayProcess:
    return gateway_factory()


class Recorder:
    """Collects the events one client receives, per name."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    def add(self, name: str, data: Any) -> None:
        self.events.append((name, data))
        self._changed.set()

    def named(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    async def wait_for(self, predicate: Callable[[], Any], within: float = 5.0) -> Any:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out; events so far: {self.events}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


def recording_client(
    namespaces: list[str], events: list[str]
) -> tuple[socketio.AsyncClient, dict[str, Recorder]]:
    client = socketio.AsyncClient(reconnection=False)
    recorders = {ns: Recorder() for ns in namespaces}
    for ns in namespaces:
        recorder = recorders[ns]
        for name in [*events, "connect_error", "server:error"]:
            client.on(name, _recorded(recorder, name), namespace=ns)
    return client, recorders


def _recorded(recorder: Recorder, name: str) -> Callable[..., None]:
    def handler(*args: Any) -> None:
        recorder.add(name, args[0] if len(args) == 1 else list(args))

    return handler


@contextlib.asynccontextmanager
async def connected(
    gateway: GatewayProcess,
    namespace: str,
    auth: dict[str, Any],
    events: list[str] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[socketio.AsyncClient, Recorder]]:
    """A python-socketio client connected to one namespace, recording ``events``."""
    client, recorders = recording_client([namespace], events or [])
    await client.connect(
        gateway.url,
        namespaces=[namespace],
        auth=auth,
        transports=["websocket"],
        wait_timeout=5,
        **options,
    )
    try:
        yield client, recorders[namespace]
    finally:
        await client.disconnect()
