"""Events reach exactly their audience; typing, navigation, presence and sync through a real gateway."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from server.chat.tables import Conversation
from server.outbox.envelope import Envelope
from server.outbox.tables import OutboxEvent
from server.redis_client import Keys, presence_bucket, presence_buckets
from server.tenancy.tables import ProjectMember
from tests.factories import (
    make_conversation,
    make_member,
    make_message,
    make_project,
    make_user,
    make_visitor,
)
from tests.realtime.conftest import GatewayProcess, connected
from tests.realtime.helpers import (
    ALL_EVENTS,
    agent_auth,
    message_event,
    presence_changes,
    publish,
    visitor_auth,
)

pytestmark = pytest.mark.slow


async def test_visitor_gets_only_its_own_public_messages_and_agents_only_their_projects(
    gateway: GatewayProcess, settings: Any, redis: Redis
) -> None:
    project, other_project = await make_project(), await make_project()
    alice, bob = await make_visitor(project, uid="v_alice"), await make_visitor(project, uid="v_bob")
    alice_chat = await make_conversation(project, alice)
    bob_chat = await make_conversation(project, bob)
    agent, stranger = await make_user(), await make_user()
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    await make_member(other_project, stranger, ProjectMember.ProjectRole.MANAGER)
    async with (
        connected(gateway, "/visitor", visitor_auth(settings, project.id, "v_alice"), ALL_EVENTS) as (
            _,
            alice_rx,
        ),
        connected(gateway, "/agent", agent_auth(settings, agent.id), ALL_EVENTS) as (_, agent_rx),
        connected(gateway, "/agent", agent_auth(settings, stranger.id), ALL_EVENTS) as (_, stranger_rx),
    ):
        await publish(
            redis, message_event(project.id, alice_chat.id, 1, visitor_uid="v_alice", body="public")
        )
        await publish(redis, message_event(project.id, alice_chat.id, 2, visitor_uid="v_alice", private=True))
        await publish(redis, message_event(project.id, bob_chat.id, 1, visitor_uid="v_bob", body="bob's"))
        # no visitor_uid in the payload: the gateway finds the owner in PostgreSQL
        anonymous = message_event(project.id, alice_chat.id, 3, visitor_uid="", body="looked up")
        anonymous.data.pop("visitor_uid")
        await publish(redis, anonymous)
        # A last event for alice: the gateway handles a channel's events in order, so once it
        # has arrived, anything wrongly sent to her before it would have arrived too.
        await publish(redis, message_event(project.id, alice_chat.id, 4, visitor_uid="v_alice", body="end"))
        await agent_rx.wait_for(lambda: len(agent_rx.named("message.created")) == 5)
        await alice_rx.wait_for(
            lambda: any(e["data"]["body"] == "end" for e in alice_rx.named("message.created"))
        )
        bodies = [event["data"]["body"] for event in alice_rx.named("message.created")]
        assert bodies == ["public", "looked up", "end"]
        assert [e["seq"] for e in agent_rx.named("message.created")] == [1, 2, 1, 3, 4]
        assert [e for _, e in stranger_rx.events if e["project_id"] != other_project.id] == []


async def test_typing_navigation_and_read_marks(gateway: GatewayProcess, settings: Any, redis: Redis) -> None:
    project = await make_project()
    visitor = await make_visitor(project, uid="v_t")
    chat = await make_conversation(project, visitor)
    agent = await make_user()
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    async with (
        connected(gateway, "/visitor", visitor_auth(settings, project.id, "v_t"), ALL_EVENTS) as (vc, v_rx),
        connected(gateway, "/agent", agent_auth(settings, agent.id), ALL_EVENTS) as (ac, a_rx),
    ):
        assert await vc.call(
            "typing", {"conversation_id": chat.id, "typing": True}, namespace="/visitor"
        ) == {"ok": True}
        started = await a_rx.wait_for(lambda: a_rx.named("typing.started"))
        assert started[0]["conversation_id"] == chat.id
        assert started[0]["data"]["sender"] == {"kind": "visitor", "visitor_uid": "v_t"}
        await vc.call("navigate", {"url": "https://shop.example/cart", "title": "Cart"}, namespace="/visitor")
        navigated = await a_rx.wait_for(lambda: a_rx.named("visitor.navigated"))
        assert navigated[0]["data"] == {
            "visitor_uid": "v_t",
            "url": "https://shop.example/cart",
            "title": "Cart",
        }
        stored = await redis.get(Keys.visitor_location(project.id, "v_t"))
        assert (
            stored is not None
            and b"/cart" in stored
            and await redis.ttl(Keys.visitor_location(project.id, "v_t")) > 0
        )
        await ac.call("typing", {"conversation_id": chat.id, "typing": True}, namespace="/agent")
        await ac.call(
            "typing", {"conversation_id": chat.id, "typing": True, "private": True}, namespace="/agent"
        )
        await ac.call("typing", {"conversation_id": chat.id, "typing": False}, namespace="/agent")
        await v_rx.wait_for(lambda: v_rx.named("typing.stopped"))
        assert len(v_rx.named("typing.started")) == 1  # the private-note typing stays with agents
        assert v_rx.named("visitor.navigated") == []  # navigation is agents' business
        # read marks go through the chat service: the event is recorded in the outbox (the
        # worker's relay publishes it; see test_cluster for that road), seq clamped to last_seq
        await make_message(chat, seq=1)
        await Conversation.update({Conversation.last_seq: 1}).where(Conversation.id == chat.id)
        assert await ac.call("read", {"conversation_id": chat.id, "seq": 4}, namespace="/agent") == {
            "ok": True,
            "seq": 1,
        }
        assert await vc.call("read", {"conversation_id": chat.id, "seq": 1}, namespace="/visitor") == {
            "ok": True,
            "seq": 1,
        }
        readers = [
            row["payload"]["data"]["reader"]
            for row in await OutboxEvent.select(OutboxEvent.payload)
            .where(OutboxEvent.type == "conversation.read")
            .output(load_json=True)
        ]
        assert readers == [{"kind": "agent", "user_id": agent.id}, {"kind": "visitor", "visitor_uid": "v_t"}]


async def test_presence_counts_tabs_once_and_waits_for_the_grace_period(
    gateway_factory: Any, settings: Any, redis: Redis
) -> None:
    # A grace period of 3 s (1 s elsewhere in these tests): what it bounds here is the time a
    # test client takes to reconnect, which a loaded machine can stretch past a second.
    grace = 3.0
    gateway = gateway_factory(REALTIME_PRESENCE_GRACE_MS=str(int(grace * 1000)))
    project = await make_project()
    agent = await make_user()
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    auth = visitor_auth(settings, project.id, "v_tabs")
    subject = f"{project.id}|visitor|v_tabs"
    sockets = Keys.presence_sockets(project.id, "visitor", "v_tabs")
    async with connected(gateway, "/agent", agent_auth(settings, agent.id), ["presence.changed"]) as (_, rx):

        def visitor_changes() -> list[str]:
            return [c["status"] for c in presence_changes(rx) if c["kind"] == "visitor"]

        async with connected(gateway, "/visitor", auth), connected(gateway, "/visitor", auth):
            await rx.wait_for(lambda: visitor_changes() == ["online"])
            async with connected(gateway, "/visitor", auth):
                await _until(lambda: _count(redis, sockets, 3), what="the third tab's entry")
            await _until(lambda: _count(redis, sockets, 2), what="the third tab to leave")
            await _swept(redis, project.id, subject, rx)  # its re-count found two tabs
            assert visitor_changes() == ["online"]
            assert await redis.zscore(Keys.visitor_presence(project.id), "v_tabs") is not None
            closed_at = time.time()
        # every tab closed: offline once, and never before the grace period is over
        changes = await rx.wait_for(
            lambda: [c for c in presence_changes(rx) if c["status"] == "offline"], within=30
        )
        assert time.time() - closed_at >= grace - 0.05, "offline before the grace period ended"
        assert visitor_changes() == ["online", "offline"] and len(changes) == 1
        assert await redis.zscore(Keys.visitor_presence(project.id), "v_tabs") is None
        # a quick reconnect within the grace period is no change at all
        async with connected(gateway, "/visitor", auth):
            await rx.wait_for(lambda: visitor_changes() == ["online", "offline", "online"])
        async with connected(gateway, "/visitor", auth):
            await _swept(redis, project.id, subject, rx)  # the re-count has run, and found it
        assert visitor_changes() == ["online", "offline", "online"]


async def _until(check: Callable[[], Awaitable[bool]], *, what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _count(redis: Redis, key: str, count: int) -> bool:
    return int(await redis.zcard(key)) == count


async def _swept(redis: Redis, project_id: int, subject: str, rx: Any) -> None:
    """Wait until the presence sweeper has re-counted ``subject`` and what it announced was
    delivered. The sweeper takes the subject off its queue, re-counts, and announces once per
    pass, after every subject that pass found due: a sentinel queued only once the subject is
    off the queue belongs to a later pass, so when it is gone too, that announcement has been
    published; a marker published after it then arrives after it (one channel, in order)."""
    pending = Keys.presence_pending(presence_bucket(project_id, presence_buckets(redis)))
    assert await redis.zscore(pending, subject) is not None, "no re-count scheduled"

    async def gone(member: str) -> bool:
        return await redis.zscore(pending, member) is None

    await _until(lambda: gone(subject), what="the sweeper to take the subject")
    sentinel = f"{project_id}|visitor|sentinel-{time.monotonic_ns()}"
    await redis.zadd(pending, {sentinel: 0})
    await _until(lambda: gone(sentinel), what="the sweeper's next pass")
    marker = {"kind": "test marker", "status": sentinel}
    await publish(
        redis,
        Envelope(type="presence.changed", project_id=project_id, at=time.time(), data={"changes": [marker]}),
    )
    await rx.wait_for(lambda: marker in presence_changes(rx), within=30)


async def test_agent_presence_online_away_offline(gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project()
    watcher, agent = await make_user(), await make_user()
    await make_member(project, watcher, ProjectMember.ProjectRole.MANAGER)
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    async with connected(gateway, "/agent", agent_auth(settings, watcher.id), ["presence.changed"]) as (
        _,
        rx,
    ):

        def changes() -> list[str]:
            return [c["status"] for c in presence_changes(rx) if c.get("user_id") == agent.id]

        async with connected(gateway, "/agent", agent_auth(settings, agent.id)) as (client, _):
            await rx.wait_for(lambda: changes() == ["online"])
            await client.call("presence", {"status": "away"}, namespace="/agent")
            await rx.wait_for(lambda: changes() == ["online", "away"])
        await rx.wait_for(lambda: changes() == ["online", "away", "offline"], within=30)


async def test_sync_returns_missed_messages_in_order(gateway: GatewayProcess, settings: Any) -> None:
    project = await make_project()
    visitor, other = await make_visitor(project, uid="v_s"), await make_visitor(project, uid="v_other")
    chat = await make_conversation(project, visitor)
    others_chat = await make_conversation(project, other)
    for seq in (3, 1, 2, 5, 4):
        await make_message(chat, seq=seq, body=f"m{seq}", private=seq == 4)
    await make_message(others_chat, seq=1)
    agent = await make_user()
    await make_member(project, agent, ProjectMember.ProjectRole.AGENT)
    async with connected(gateway, "/visitor", visitor_auth(settings, project.id, "v_s")) as (client, _):
        answer = await client.call(
            "sync",
            {"conversations": {str(chat.id): 1, str(others_chat.id): 0, "99999": 0}},
            namespace="/visitor",
        )
        synced = answer["conversations"][str(chat.id)]
        assert [m["seq"] for m in synced["messages"]] == [2, 3, 5]  # no private note for the visitor
        assert synced["has_more"] is False
        assert set(answer["errors"]) == {str(others_chat.id), "99999"}
        assert answer["errors"][str(others_chat.id)]["code"] == "not_found"
    async with connected(gateway, "/agent", agent_auth(settings, agent.id)) as (client, _):
        answer = await client.call("sync", {"conversations": {str(chat.id): 0}}, namespace="/agent")
        assert [m["body"] for m in answer["conversations"][str(chat.id)]["messages"]] == [
            "m1",
            "m2",
            "m3",
            "m4",
            "m5",
        ]
