"""The catch-up rule of docs/protocol.md, run as written there, across killed and restarted gateways.

Issue #9: after a gateway restart live events arrived before the ``sync`` answer, and the rule
the docs gave ("drop seq <= last seen, sync from last seen") silently dropped the 21 to 42
messages that ``sync`` returned below a seq already seen live. This test takes the Python example
of docs/protocol.md (the ``CatchUp`` class and ``follow()``) out of the page and runs it unchanged
with the official python-socketio client: a visitor follows its conversation on gateway A while
the same visitor writes from another socket on gateway B and an agent answers (and writes private
notes) over REST; a real worker stores everything. Gateway A is killed (-9) and restarted on its
port three times, each time after messages were stored while it was down. At the end the client
holds every stored message it may see exactly once, and its transcript is the stored one, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from server.chat.tables import Message
from server.tenancy.apikeys import create_api_key
from server.tenancy.queries import actor_for
from server.tenancy.tables import ProjectMember
from tests.factories import make_member, make_project, make_user, make_visitor
from tests.pipeline.faults import worker
from tests.realtime.conftest import GatewayProcess
from tests.realtime.helpers import visitor_auth

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RESTARTS = 3
MISSED_PER_RESTART = 6
"""Messages stored while the client's gateway is down, each time (only ``sync`` can bring them)."""


def protocol_example() -> dict[str, Any]:
    """The Python example of docs/protocol.md, executed as a module (its ``__main__`` part skipped)."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text.split("\n## Python example\n", 1)[1]
    code = section.split("```python\n", 1)[1].split("\n```\n", 1)[0]
    namespace: dict[str, Any] = {"__name__": "docs_protocol_example"}
    exec(compile(code, "docs/protocol.md (Python example)", "exec"), namespace)  # noqa: S102
    return namespace


async def wait_for(condition: Callable[[], Any], what: str, within: float = 30.0) -> None:
    """Poll ``condition`` (a function, or a coroutine function) until it is true, or fail."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(0.05)


async def stored(project_id: int) -> list[tuple[int, str, bool]]:
    """``(seq, body, private)`` of the project's stored messages (one conversation here), by seq."""
    rows = (
        await Message.select(Message.seq, Message.body, Message.private)
        .where(Message.project == project_id)
        .order_by(Message.seq)
    )
    return [(row["seq"], row["body"], row["private"]) for row in rows]


class Senders:
    """The visitor on another socket and an agent over REST, writing until told to stop.

    Every message has its own ``client_msg_id``; a refusal that says "retry" (``rate_limited``,
    ``unavailable``) is retried with the same id, so each one is stored exactly once.
    """

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.stop = asyncio.Event()

    async def visitor(self, sio: Any) -> None:
        index = 0
        while not self.stop.is_set():
            client_msg_id = str(uuid.uuid4())
            while True:
                try:
                    ack = await sio.call(
                        "message:send",
                        {"body": f"visitor #{index}", "client_msg_id": client_msg_id},
                        namespace="/visitor",
                        timeout=15,
                    )
                except socketio.exceptions.SocketIOError:
                    # No ack, or the socket dropped (a ping late on a loaded machine) and is
                    # reconnecting: send again with the same id, as documented.
                    await asyncio.sleep(0.2)
                    continue
                if "error" not in ack:
                    break
                assert ack["error"]["code"] in ("rate_limited", "unavailable"), ack
                await asyncio.sleep(ack["error"].get("retry_after", 0.2))
            self.accepted.append(client_msg_id)
            index += 1
            await asyncio.sleep(0.2)  # 5/s, under the visitor's 60 per 10 s

    async def agent(self, http: httpx.AsyncClient, path: str, key: str) -> None:
        index = 0
        while not self.stop.is_set():
            client_msg_id = str(uuid.uuid4())
            body = {"body": f"agent #{index}", "private": index % 4 == 3, "client_msg_id": client_msg_id}
            while True:
                answer = await http.post(path, json=body, headers={"authorization": f"Bearer {key}"})
                if answer.status_code == 202:
                    break
                assert answer.status_code in (429, 503), answer.text
                await asyncio.sleep(float(answer.headers.get("retry-after", "0.2")))
            self.accepted.append(client_msg_id)
            index += 1
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def writing(gateway: GatewayProcess, auth: dict[str, Any]) -> AsyncIterator[socketio.AsyncClient]:
    """The visitor's other socket (another tab), on another gateway; it reconnects by itself."""
    writer = socketio.AsyncClient(reconnection_delay=0.2)
    await writer.connect(
        gateway.url, namespaces=["/visitor"], auth=auth, transports=["websocket"], wait_timeout=10
    )
    try:
        yield writer
    finally:
        await writer.disconnect()


async def test_the_documented_rule_keeps_every_message_once_across_gateway_restarts(
    gateway_factory: Callable[..., GatewayProcess],
    client: httpx.AsyncClient,
    settings: Any,
    subprocess_env: dict[str, str],
    tmp_path: Path,
) -> None:
    example = protocol_example()
    project = await make_project()
    visitor = await make_visitor(project)
    agent = await make_user()
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    key = (
        await create_api_key(
            await actor_for(agent), name="t", project_id=None, read_only=False, expires_at=None
        )
    ).secret
    auth = visitor_auth(settings, project.id, visitor.uid)
    shown: list[dict[str, Any]] = []
    catch_up = example["CatchUp"]()
    gateway_a, gateway_b = gateway_factory(), gateway_factory()
    senders = Senders()
    tasks: list[asyncio.Task[None]] = []
    with worker(subprocess_env, tmp_path):
        sio = await example["follow"](gateway_a.url, "/visitor", auth, catch_up, shown.append)
        try:
            async with writing(gateway_b, auth) as writer:
                # The visitor's first message opens the conversation; the follower sees it live.
                tasks.append(asyncio.create_task(senders.visitor(writer)))
                await wait_for(lambda: shown, "the first message, live")
                conversation_id = shown[0]["conversation_id"]
                path = f"/api/v1/projects/{project.id}/conversations/{conversation_id}/messages"
                tasks.append(asyncio.create_task(senders.agent(client, path, key)))

                for restart in range(RESTARTS):
                    seen = len(shown)

                    def more_live(seen: int = seen) -> bool:
                        return len(shown) >= seen + 5

                    await wait_for(more_live, f"live messages ({restart})")
                    gateway_a.process.kill()
                    gateway_a.process.wait()
                    await wait_for(lambda: not sio.connected, "the client to notice the dead gateway")
                    down_at = len(await stored(project.id))

                    async def missed(down_at: int = down_at) -> bool:
                        return len(await stored(project.id)) >= down_at + MISSED_PER_RESTART

                    await wait_for(missed, "messages stored while the gateway is down")
                    gateway_a = gateway_factory(REALTIME_PORT=str(gateway_a.port))
                    await wait_for(lambda: sio.connected, "the client to reconnect", within=60)

                senders.stop.set()
                await asyncio.gather(*tasks)

                async def all_stored() -> bool:
                    return len(await stored(project.id)) == len(senders.accepted)

                await wait_for(all_stored, "the worker to store every accepted message")
                visible = [row for row in await stored(project.id) if not row[2]]
                await wait_for(
                    lambda: (
                        {m["seq"] for m in shown} >= {seq for seq, _, _ in visible}
                        and catch_up.floor.get(conversation_id) == visible[-1][0]
                    ),
                    "the client to hold every visible message, its floor at the last",
                )
        finally:
            # Let the senders finish the message in hand (a request cancelled halfway leaves the
            # in-process app with work it waits for at shutdown); cancel only a stuck one.
            senders.stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sio.disconnect(), 10)

    seqs = [message["seq"] for message in shown]
    assert len(seqs) == len(set(seqs)), "a message was shown twice"
    assert all(not message["private"] for message in shown), "a private note reached the visitor"
    transcript = sorted(shown, key=lambda message: message["seq"])
    assert [(m["seq"], m["body"]) for m in transcript] == [(seq, body) for seq, body, _ in visible]
    assert len(visible) >= RESTARTS * MISSED_PER_RESTART
    assert len(visible) < len(senders.accepted), "no private note was written: the floor rule went untested"
