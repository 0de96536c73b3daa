"""Agent presence: chosen online / away / offline, automatic away when idle in every tab, offline
after the last tab closes; what managers read (``agent_statuses``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from server.chat.live import agent_statuses
from server.redis_client import Keys, presence_bucket, presence_buckets
from tests.api.world import build_world
from tests.realtime.conftest import GatewayProcess, connected
from tests.realtime.helpers import agent_auth, presence_changes

pytestmark = pytest.mark.slow


async def _eventually(check: Callable[[], Any], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_chosen_status_idle_away_and_offline_after_the_last_tab(
    gateway_factory: Callable[..., GatewayProcess], settings: Any, redis: Redis
) -> None:
    gateway = gateway_factory(REALTIME_AGENT_IDLE_MS="1500")
    world = await build_world()
    project_id, agent = world.project.id, world.users["agent"].id
    auth = agent_auth(settings, agent)

    async def status_is(expected: str) -> bool:
        return (await agent_statuses(redis, project_id, [agent]))[agent] == expected

    assert await status_is("offline")
    async with (
        connected(
            gateway, "/agent", agent_auth(settings, world.users["manager"].id), ["presence.changed"]
        ) as (
            _,
            manager_rx,
        ),
        connected(gateway, "/agent", auth) as (tab1, _),
        connected(gateway, "/agent", auth) as (tab2, _),
    ):
        await _eventually(lambda: status_is("online"))
        # No input in any tab for the idle time: away, automatically.
        await _eventually(lambda: status_is("away"))
        assert await tab2.call("activity", {}, namespace="/agent") == {"ok": True}
        assert await status_is("online"), "input in any tab ends an automatic away"

        assert await tab1.call("presence", {"status": "offline"}, namespace="/agent") == {
            "ok": True,
            "status": "offline",
        }
        assert await status_is("offline"), "appear offline while connected"
        await tab2.call("activity", {}, namespace="/agent")
        assert await status_is("offline"), "activity does not override a chosen status"
        await tab1.call("presence", {"status": "away"}, namespace="/agent")
        assert await status_is("away")
        await tab1.call("presence", {"status": "online"}, namespace="/agent")
        assert await status_is("online")
        bad = await tab1.call("presence", {"status": "busy"}, namespace="/agent")
        assert bad["error"]["code"] == "invalid_payload"

        def mine() -> list[str]:
            return [c["status"] for c in presence_changes(manager_rx) if c.get("user_id") == agent]

        # The last change may still wait in its 250 ms presence window (docs/protocol.md).
        await manager_rx.wait_for(lambda: mine()[-1:] == ["online"] and "offline" in mine())
        assert mine()[:2] == ["online", "away"]

        await tab1.disconnect()
        # Wait for the server to see tab1 go and for the re-count its leaving scheduled (after the
        # grace period) to run; then the agent must still be present. The idle timer (1.5 s here)
        # may have turned them away meanwhile on a slow machine: present either way, never offline.
        sockets = Keys.presence_sockets(project_id, "agent", agent)
        pending = Keys.presence_pending(presence_bucket(project_id, presence_buckets(redis)))
        subject = f"{project_id}|agent|{agent}"

        async def one_socket_left() -> bool:
            return int(await redis.zcard(sockets)) == 1

        def off_the_queue(member: str) -> Callable[[], Any]:
            async def check() -> bool:
                return await redis.zscore(pending, member) is None

            return check

        await _eventually(one_socket_left, within=30)
        await _eventually(off_the_queue(subject), within=30)
        # a sentinel queued now belongs to the sweeper's next pass: once it is gone too, the
        # pass that re-counted the agent has finished
        sentinel = f"{project_id}|agent|0"
        await redis.zadd(pending, {sentinel: 0})
        await _eventually(off_the_queue(sentinel), within=30)
        assert not await status_is("offline"), "another tab is still open"
    # Both tabs closed: offline once the grace period (1 s in tests) is over.
    await _eventually(lambda: status_is("offline"))


async def test_a_chosen_status_survives_reconnecting(
    gateway: GatewayProcess, settings: Any, redis: Redis
) -> None:
    world = await build_world()
    project_id, agent = world.project.id, world.users["agent"].id
    async with connected(gateway, "/agent", agent_auth(settings, agent)) as (tab, _):
        await tab.call("presence", {"status": "away"}, namespace="/agent")
    await _eventually(lambda: _is(redis, project_id, agent, "offline"))
    async with connected(gateway, "/agent", agent_auth(settings, agent)):
        await _eventually(lambda: _is(redis, project_id, agent, "away"))


async def _is(redis: Redis, project_id: int, agent: int, expected: str) -> bool:
    return (await agent_statuses(redis, project_id, [agent]))[agent] == expected
