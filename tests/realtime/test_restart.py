"""A gateway killed and restarted while its clients reconnect in a burst delivers live events again.

Issue #9: 1 to 3 of 8 restarted processes delivered nothing, for as long as they ran. Sockets were
accepted before the fan-out's own subscribe had finished, a namespace join subscribed at the same
moment, and redis-py's ``PubSub.connect()`` (an ``await`` between "no connection yet?" and keeping
one) opened two SUBSCRIBER connections of which only one was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from server.tenancy.tables import ProjectMember
from tests.factories import make_conversation, make_member, make_project, make_user, make_visitor
from tests.processes import free_port, stop
from tests.realtime.conftest import GatewayProcess, connected, launch_gateway
from tests.realtime.helpers import agent_auth, message_event, publish, visitor_auth

pytestmark = pytest.mark.slow

RESTARTS = 8
VISITORS = 12


class ReconnectingSocket:
    """A client that reconnects at once, again and again (the burst after a restart), and records
    the bodies of the ``message.created`` events it receives while joined."""

    def __init__(self, url: str, namespace: str, auth: dict[str, Any]) -> None:
        self.url, self.namespace, self.auth = url, namespace, auth
        self.joins = 0
        self.bodies: list[str] = []
        self.changed = asyncio.Event()

    async def run(self, http: aiohttp.ClientSession) -> None:
        head = f"42{self.namespace},"
        prefix = head + '["message.created",'
        while True:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, asyncio.TimeoutError):
                async with http.ws_connect(
                    self.url, autoping=False, timeout=aiohttp.ClientWSTimeout(ws_close=2)
                ) as ws:
                    opened = await ws.receive_str(timeout=5)
                    assert opened.startswith("0{"), opened
                    await ws.send_str(f"40{self.namespace}," + json.dumps(self.auth))
                    async for frame in ws:
                        if frame.type is not aiohttp.WSMsgType.TEXT:
                            break
                        text = frame.data
                        if text == "2":
                            await ws.send_str("3")
                        elif text.startswith(f"40{self.namespace},"):
                            self.joins += 1
                        elif text.startswith(prefix):
                            self.bodies.append(json.loads(text[len(head) :])[1]["data"]["body"])
                        self.changed.set()
            self.changed.set()
            await asyncio.sleep(0.005)


async def wait_all(sockets: list[ReconnectingSocket], predicate: Any, what: str, within: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not all(predicate(s) for s in sockets):
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            missing = [i for i, s in enumerate(sockets) if not predicate(s)]
            raise AssertionError(f"timed out waiting for {what}; sockets {missing} never did")
        for s in sockets:
            s.changed.clear()
        waits = [asyncio.create_task(s.changed.wait()) for s in sockets]
        await asyncio.wait(waits, timeout=min(remaining, 0.2), return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()


async def test_every_restarted_gateway_delivers_live_events(
    settings: Any, redis: Redis, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    project = await make_project()
    agent = await make_user()
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    chats = []
    for index in range(VISITORS):
        visitor = await make_visitor(project, uid=f"v_restart{index}")
        chats.append(await make_conversation(project, visitor))
    port = free_port()

    def launch(generation: int) -> GatewayProcess:
        return launch_gateway(subprocess_env, tmp_path / f"gateway{generation}.log", REALTIME_PORT=str(port))

    gateway = await asyncio.to_thread(launch, 0)
    url = gateway.ws_url
    sockets = [
        ReconnectingSocket(url, "/visitor", visitor_auth(settings, project.id, f"v_restart{i}"))
        for i in range(VISITORS)
    ]
    sockets.append(ReconnectingSocket(url, "/agent", agent_auth(settings, agent.id)))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        clients = [asyncio.create_task(s.run(http)) for s in sockets]
        try:
            for generation in range(RESTARTS + 1):
                await wait_all(sockets, lambda s, g=generation: s.joins > g, f"joins to gateway {generation}")
                body = f"live after start {generation}"
                for index, chat in enumerate(chats):
                    await publish(
                        redis,
                        message_event(
                            project.id, chat.id, generation + 1, visitor_uid=f"v_restart{index}", body=body
                        ),
                    )
                await wait_all(
                    sockets[:VISITORS],
                    lambda s, b=body: b in s.bodies,
                    f"live delivery by gateway {generation}",
                )
                await wait_all(
                    sockets[VISITORS:],
                    lambda s, b=body: s.bodies.count(b) == VISITORS,
                    f"the agent's live delivery by gateway {generation}",
                )
                assert gateway.process.poll() is None, gateway.output()[-3000:]
                if generation < RESTARTS:
                    gateway.process.kill()
                    gateway.process.wait()
                    gateway = await asyncio.to_thread(launch, generation + 1)
            # an agent that connects afresh to the last process is served too
            async with connected(gateway, "/agent", agent_auth(settings, agent.id), ["message.created"]) as (
                _,
                fresh,
            ):
                await publish(
                    redis, message_event(project.id, chats[0].id, 99, visitor_uid="v_restart0", body="fresh")
                )
                await fresh.wait_for(lambda: fresh.named("message.created"))
        finally:
            for task in clients:
                task.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
            stop(gateway.process)
