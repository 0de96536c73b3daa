"""static/js/parley-client.js, the browser client of the protocol, against a real gateway.

Run under Node's WebSocket (the same file the browsers load; the widget's Chromium tests cover
it in a browser too). It must answer server pings (the gateway here pings every second and
closes a silent client after four), acknowledge server acks, and follow the catch-up rule of
docs/protocol.md: a live message above a gap does not hide the messages below it, a restarted
gateway loses nothing, and nothing is delivered twice.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from server.chat.tables import Message
from tests.factories import make_conversation, make_message, make_project, make_visitor
from tests.realtime.conftest import GatewayProcess
from tests.realtime.helpers import message_event, publish, visitor_auth

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent / "node" / "parley_client_check.mjs"


class NodeClient:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        """Every event read so far, in order."""

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 10.0
    ) -> dict[str, Any]:
        for seen in self.events:
            if predicate(seen):
                return seen
        assert self.process.stdout is not None
        deadline = asyncio.get_running_loop().time() + within
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                line = await asyncio.wait_for(self.process.stdout.readline(), max(remaining, 0))
            except TimeoutError:
                raise AssertionError(f"timed out; events: {self.events}") from None
            assert line, f"client exited; events: {self.events}"
            event: dict[str, Any] = json.loads(line)
            self.events.append(event)
            if predicate(event):
                return event

    def seqs(self) -> list[int]:
        return [event["detail"]["seq"] for event in self.events if event["event"] == "message"]

    def count(self, name: str) -> int:
        return sum(1 for event in self.events if event["event"] == name)

    async def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()


def node_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is needed to run the browser client outside a browser")
    check = subprocess.run([node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"], check=False)
    return [node] if check.returncode == 0 else [node, "--experimental-websocket"]


async def start_client(gateway: GatewayProcess, token: str, conversation_id: int, floor: int) -> NodeClient:
    process = await asyncio.create_subprocess_exec(
        *node_command(),
        str(SCRIPT),
        gateway.url,
        "/visitor",
        token,
        str(conversation_id),
        str(floor),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    return NodeClient(process)


@pytest.fixture
async def stopper() -> AsyncIterator[list[NodeClient]]:
    clients: list[NodeClient] = []
    yield clients
    for client in clients:
        if client.process.returncode is None:
            client.process.kill()
            await client.process.wait()


async def test_catch_up_rule_and_gateway_restart(
    gateway_factory: Callable[..., GatewayProcess], settings: Any, redis: Redis, stopper: list[NodeClient]
) -> None:
    project = await make_project()
    visitor = await make_visitor(project)
    conversation = await make_conversation(project, visitor)
    await make_message(conversation, seq=1)
    await make_message(conversation, seq=2, private=True, sender_kind=Message.SenderKind.AGENT.value)
    await make_message(conversation, seq=3)
    gateway = gateway_factory()
    token = visitor_auth(settings, project.id, visitor.uid)["token"]
    client = await start_client(gateway, token, conversation.id, 0)
    stopper.append(client)

    # First connect: sync from 0 gives the visible messages, never the private note.
    await client.wait_for(lambda e: e["event"] == "synced")
    assert client.seqs() == [1, 3]

    # Stored while the client heard nothing; then only seq 6 arrives live. The naive rule
    # ("drop seq <= last seen, sync from last seen") would lose 4 and 5 for good.
    for seq in (4, 5, 6):
        await make_message(conversation, seq=seq)
    await publish(redis, message_event(project.id, conversation.id, 6, visitor_uid=visitor.uid))
    await client.wait_for(lambda e: e["event"] == "message" and e["detail"]["seq"] == 5)
    assert client.seqs() == [1, 3, 6, 4, 5]

    # A server ack (rtt:probe) is answered; pings too, or a gateway that enforces its ping
    # timeout would have closed it by now.
    await client.command("rtt")
    rtt = await client.wait_for(lambda e: e["event"] == "rtt")
    assert rtt["detail"]["client_ack"] == ["ok"]
    await asyncio.sleep(5)  # longer than pingInterval + pingTimeout (1 s + 3 s)
    await client.command("rtt")
    await client.wait_for(lambda e: e["event"] == "rtt" and e is not rtt)  # reads all before it
    assert client.count("disconnect") == 0, client.events

    # The gateway dies; messages are stored meanwhile; a new gateway on the same port.
    gateway.process.kill()
    gateway.process.wait()
    await client.wait_for(lambda e: e["event"] == "disconnect")
    for seq in (7, 8):
        await make_message(conversation, seq=seq)
    gateway_factory(REALTIME_PORT=str(gateway.port))
    await client.wait_for(lambda e: e["event"] == "connect" and e["detail"]["recovered"])
    await client.wait_for(lambda e: e["event"] == "message" and e["detail"]["seq"] == 8, within=15)

    # Live duplicates of what sync already gave are dropped.
    await publish(redis, message_event(project.id, conversation.id, 8, visitor_uid=visitor.uid))
    await publish(redis, message_event(project.id, conversation.id, 9, visitor_uid=visitor.uid))
    await client.wait_for(lambda e: e["event"] == "message" and e["detail"]["seq"] == 9)
    assert client.seqs() == [1, 3, 6, 4, 5, 7, 8, 9]
    await client.command("exit")
