"""Presence storms are coalesced (issue #15): a list per project, at most one event per 250 ms.

First the coalescer alone (in process, real event loop), then the storm the issue measured: a
gateway dies with many visitors, and an agent on another gateway learns all of them went offline
in a few ``presence.changed`` events carrying lists, not one event per visitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any, cast

import aiohttp
import pytest
from redis.asyncio import Redis

from server.outbox.envelope import Envelope
from server.outbox.events import EventType
from server.realtime.fanout import PRESENCE_WINDOW_SECONDS, PresenceCoalescer
from server.redis_client import Keys, presence_bucket, presence_buckets
from server.tenancy.tables import ProjectMember
from tests.factories import make_member, make_project, make_user
from tests.realtime.conftest import connected
from tests.realtime.helpers import agent_auth, presence_changes, raw_socket, visitor_auth

VISITORS = 60


def _presence(project_id: int, *uids: str, status: str = "online") -> Envelope:
    changes = [{"kind": "visitor", "status": status, "visitor_uid": uid} for uid in uids]
    return Envelope(type=EventType.PRESENCE_CHANGED, project_id=project_id, at=0.0, data={"changes": changes})


async def _until(predicate: Any, what: str, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_the_first_change_goes_out_at_once_and_the_rest_of_the_window_together() -> None:
    loop = asyncio.get_running_loop()
    delivered: list[tuple[float, Envelope]] = []
    coalescer = PresenceCoalescer(lambda envelope: delivered.append((loop.time(), envelope)))
    coalescer.add(_presence(1, "v_0"))
    assert len(delivered) == 1, "a change after a quiet window is not delayed"
    for index in range(1, 51):
        coalescer.add(_presence(1, f"v_{index}"))
    coalescer.add(_presence(1, "v_1", status="offline"))
    coalescer.add(_presence(2, "v_other"))  # another project has its own window
    assert [envelope.project_id for _, envelope in delivered] == [1, 2]
    await _until(lambda: len(delivered) == 3, "the window to close")
    at, envelope = delivered[2]
    changes = envelope.data["changes"]
    # Every change of the window, in order, in one event (v_1's offline after its online).
    assert [(c["visitor_uid"], c["status"]) for c in changes] == [
        *((f"v_{index}", "online") for index in range(1, 51)),
        ("v_1", "offline"),
    ]
    assert at - delivered[0][0] >= PRESENCE_WINDOW_SECONDS - 0.01
    # The next window passes with nothing to send; then a change goes out at once again.
    await _until(lambda: not coalescer._windows, "the quiet window to close")
    assert len(delivered) == 3
    coalescer.add(_presence(1, "v_late"))
    assert len(delivered) == 4 and delivered[3][1].data["changes"][0]["visitor_uid"] == "v_late"
    coalescer.close()


@pytest.mark.slow
async def test_a_node_dying_with_many_visitors_costs_an_agent_a_few_events(
    gateway_factory: Any, settings: Any, redis: Redis
) -> None:
    # The visitors' node pings rarely: its bare sockets need not answer pings during the test.
    doomed = gateway_factory(
        REALTIME_PING_INTERVAL_MS="60000", REALTIME_PING_TIMEOUT_MS="60000", REALTIME_NODE_ID="doomed"
    )
    survivor = gateway_factory()
    project = await make_project()
    agent = await make_user()
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    uids = [f"v_storm_{index}" for index in range(VISITORS)]
    async with (
        connected(survivor, "/agent", agent_auth(settings, agent.id), ["presence.changed"]) as (_, rx),
        aiohttp.ClientSession() as http,
    ):

        def statuses(status: str) -> list[str]:
            return [
                c["visitor_uid"]
                for c in presence_changes(rx)
                if c["kind"] == "visitor" and c["status"] == status
            ]

        sockets = await asyncio.gather(
            *(
                raw_socket(http, doomed.ws_url, "/visitor", visitor_auth(settings, project.id, uid))
                for uid in uids
            )
        )
        try:
            await rx.wait_for(lambda: sorted(statuses("online")) == sorted(uids), within=30)
            online_events = len(rx.named("presence.changed"))
            # The connection storm came in batches too: far fewer events than visitors.
            assert online_events < VISITORS, online_events

            async def one_expiry() -> bool:
                # After a heartbeat every socket of the node expires at the same moment.
                bucket = presence_bucket(project.id, presence_buckets(redis))
                entries = await redis.zrange(Keys.all_sockets(bucket), 0, -1, withscores=True)
                scores = {
                    score
                    for member, score in cast(list[tuple[bytes, float]], entries)
                    if b"|doomed:" in member
                }
                return len(scores) == 1

            deadline = asyncio.get_running_loop().time() + 15
            while not await one_expiry():
                assert asyncio.get_running_loop().time() < deadline, "no heartbeat refreshed the sockets"
                await asyncio.sleep(0.1)
            doomed.process.send_signal(signal.SIGKILL)
            doomed.process.wait()
            await rx.wait_for(lambda: sorted(statuses("offline")) == sorted(uids), within=30)
            offline_events = [
                e
                for e in rx.named("presence.changed")
                if any(c["status"] == "offline" for c in e["data"]["changes"])
            ]
            # Before coalescing: one event per visitor (60). Now the sweep that finds them all
            # announces them as one list; allow for the expiry straddling two sweeps.
            assert len(offline_events) <= 2, [len(e["data"]["changes"]) for e in offline_events]
            assert all(isinstance(e["data"]["changes"], list) for e in rx.named("presence.changed"))
        finally:
            for ws in sockets:
                with contextlib.suppress(Exception):
                    await ws.close()
