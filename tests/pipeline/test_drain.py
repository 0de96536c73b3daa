"""Drain jobs: one per idle shard, rounds for as long as messages come, never a message left behind."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue

from server.chat import persistence
from server.chat.mailbox import Mailboxes, Shard, Taken, decode, shard_of_key, shard_of_project
from server.chat.persistence import DrainPace, drain
from server.chat.schemas import MessageKind, SendMessage
from server.chat.sending import MessageSender
from server.outbox.envelope import Envelope
from server.outbox.events import EventType
from server.outbox.relay import FastPublisher
from server.outbox.tables import OutboxEvent
from tests.factories import make_project
from tests.pipeline.helpers import eventually, messages_by_conversation


def _visitor(project_id: int, body: str, uid: str = "v_drain") -> SendMessage:
    return SendMessage(kind=MessageKind.VISITOR, project_id=project_id, visitor_uid=uid, body=body)


async def _shard(mailboxes: Mailboxes) -> Shard:
    (key,) = await mailboxes.stale(older_than=-3600)
    return shard_of_key(key)


async def test_a_drain_ends_only_if_nothing_was_appended_since_it_read_the_token(
    sender: MessageSender, mailboxes: Mailboxes, redis: Redis
) -> None:
    project = await make_project()
    await sender.send(_visitor(project.id, "one"))
    shard = await _shard(mailboxes)
    taken = await mailboxes.take(shard, 10)
    assert taken.generation == b"1" and taken.complete
    await sender.send(_visitor(project.id, "two"))  # while the round runs
    assert not await mailboxes.pop(taken.items, release=(shard, taken.generation))
    taken = await mailboxes.take(shard, 10)
    assert [decode(raw).body for raws in taken.items.values() for raw in raws] == ["two"]
    assert taken.generation == b"2"
    assert await mailboxes.pop(taken.items, release=(shard, taken.generation))
    assert await redis.exists(shard.token) == 0
    assert await mailboxes.stale(older_than=-3600) == []
    assert await redis.zcard(shard.mailboxes) == 0


async def test_a_round_pops_on_a_server_that_lost_its_scripts(
    sender: MessageSender, mailboxes: Mailboxes, redis: Redis
) -> None:
    """A restarted or just promoted server has no scripts: the pop loads them and goes on."""
    project = await make_project()
    await sender.send(_visitor(project.id, "one"))
    await sender.send(_visitor(project.id, "two", uid="v_drain_2"))
    shard = shard_of_project(project.id, mailboxes.shards)
    taken = await mailboxes.take(shard, 10)
    assert len(taken.items) == 2 and taken.generation is not None
    await redis.script_flush()
    assert await mailboxes.pop(taken.items, release=(shard, taken.generation))
    assert await redis.exists(shard.token) == 0
    assert await mailboxes.stale(older_than=-3600) == []


class _Busy(Mailboxes):
    """Mailboxes whose sender sends one more message right after each of a drain's first reads."""

    def __init__(self, redis: Redis, sender: MessageSender, more: list[SendMessage]) -> None:
        super().__init__(redis)
        self.sender = sender
        self.more = more

    async def take(self, shard: Shard, limit: int, max_mailboxes: int = 500) -> Taken:
        taken = await super().take(shard, limit, max_mailboxes)
        if self.more:
            await self.sender.send(self.more.pop(0))
        return taken


class _Recording(FastPublisher):
    """Publishes for real and remembers the seqs of each round."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self.rounds: list[list[int | None]] = []

    async def publish(self, envelopes: Sequence[Envelope]) -> int:
        self.rounds.append([e.seq for e in envelopes if e.type == EventType.MESSAGE_CREATED])
        return await super().publish(envelopes)


async def test_a_drain_goes_round_again_for_what_arrives_during_a_round(
    sender: MessageSender, mailboxes: Mailboxes, redis: Redis
) -> None:
    project = await make_project()
    await sender.send(_visitor(project.id, "m0"))
    shard = await _shard(mailboxes)
    busy = _Busy(redis, sender, [_visitor(project.id, f"m{index}") for index in (1, 2, 3)])
    fast_path = _Recording(redis)
    try:
        outcome = await drain(busy, shard, fast_path=fast_path)
    finally:
        await fast_path.aclose()
    assert outcome.drained and outcome.rounds == 4 and outcome.stored == 4
    assert fast_path.rounds == [[1], [2], [3], [4]]
    (rows,) = (await messages_by_conversation()).values()
    assert [(row["seq"], row["body"]) for row in rows] == [(1, "m0"), (2, "m1"), (3, "m2"), (4, "m3")]
    assert await redis.exists(shard.token) == 0

    async def all_marked() -> bool:
        unpublished: int = await OutboxEvent.count().where(OutboxEvent.published_at.is_null())
        return unpublished == 0

    await eventually(all_marked, within=10, what="the fast path's marks")


async def test_a_drain_at_its_time_limit_keeps_its_token_for_the_next_job(
    sender: MessageSender, mailboxes: Mailboxes, redis: Redis
) -> None:
    project = await make_project()
    await sender.send(_visitor(project.id, "m0"))
    shard = await _shard(mailboxes)
    busy = _Busy(redis, sender, [_visitor(project.id, "m1")])
    outcome = await drain(busy, shard, max_seconds=0)
    assert not outcome.drained and outcome.stored == 1
    assert await redis.exists(shard.token) == 1  # still due: new messages queue no job
    again = await drain(busy, shard)
    assert again.drained and again.stored == 1
    assert await redis.exists(shard.token) == 0


async def test_concurrent_drains_of_one_shard_store_everything_once_in_order(
    sender: MessageSender, mailboxes: Mailboxes
) -> None:
    """A drain and a job for the same shard (an expired token, a retried job) may overlap."""
    project = await make_project()
    sender.max_batch = 3
    await asyncio.gather(*(sender.send(_visitor(project.id, f"m{index}")) for index in range(30)))
    shard = await _shard(mailboxes)
    outcomes = await asyncio.gather(*(drain(mailboxes, shard) for _ in range(4)))
    assert sum(outcome.stored for outcome in outcomes) == 30
    (rows,) = (await messages_by_conversation()).values()
    assert [row["body"] for row in rows] == [f"m{index}" for index in range(30)]
    assert [row["seq"] for row in rows] == list(range(1, 31))


async def test_a_busy_shards_drain_waits_for_the_next_message_instead_of_ending(
    sender: MessageSender, mailboxes: Mailboxes, queue: RedisQueue, redis: Redis
) -> None:
    project = await make_project()
    await sender.send(_visitor(project.id, "m0"))
    shard = await _shard(mailboxes)
    assert await queue.count("queued") == 1  # m0 made the drain due
    # A linger far longer than any step here can take on a loaded machine: the drain is still
    # waiting when each next message comes. The last message shortens it, so the drain ends soon.
    pace = DrainPace(linger=120.0)
    pace.busy(shard, time.monotonic())  # the shard had messages a moment ago
    draining = asyncio.create_task(drain(mailboxes, shard, pace=pace))
    try:
        for index in range(1, 4):
            await eventually(
                functools.partial(_stored, index),
                within=60,
                what=f"the lingering drain to store m{index - 1}",
            )
            assert not draining.done()  # still lingering: it stores what comes next
            if index == 3:
                pace.linger = 0.2
            await sender.send(_visitor(project.id, f"m{index}"))
        outcome = await asyncio.wait_for(draining, timeout=60)  # ends soon after m3
    finally:
        if not draining.done():  # a failure above must not leave a drain holding its transaction
            draining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await draining
    assert outcome.drained and outcome.stored == 4 and outcome.rounds == 4
    assert await queue.count("queued") == 1  # m1..m3 queued no job
    assert await redis.exists(shard.token) == 0
    await sender.send(_visitor(project.id, "m4"))
    assert await queue.count("queued") == 2  # ended: the next message queues a drain again


async def _stored(count: int) -> bool:
    return sum(len(rows) for rows in (await messages_by_conversation()).values()) == count


async def test_a_busy_drain_takes_turns_when_other_jobs_wait(
    sender: MessageSender, mailboxes: Mailboxes, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(persistence, "FAIR_SHARE_SECONDS", 0.0)

    async def others_waiting() -> bool:
        return True

    project = await make_project()
    await sender.send(_visitor(project.id, "m0"))
    shard = await _shard(mailboxes)
    busy = _Busy(redis, sender, [_visitor(project.id, "m1")])
    outcome = await drain(busy, shard, others_waiting=others_waiting)
    assert not outcome.drained and outcome.stored == 1  # m1 came: handed over, token kept
    assert await redis.exists(shard.token) == 1
    pace = DrainPace(linger=5.0)
    pace.busy(shard, time.monotonic())
    outcome = await drain(mailboxes, shard, pace=pace, others_waiting=others_waiting)
    assert outcome.drained and outcome.stored == 1  # would linger, but others wait: it just ends
    assert await redis.exists(shard.token) == 0


async def test_a_mailbox_cleared_with_its_project_leaves_the_drain_set(
    sender: MessageSender, mailboxes: Mailboxes, redis: Redis
) -> None:
    project = await make_project()
    await sender.send(_visitor(project.id, "m0"))
    (key,) = await mailboxes.stale(older_than=-3600)
    shard = shard_of_key(key)
    await redis.delete(key)  # what clearing a deleted project's keys does
    outcome = await drain(mailboxes, shard)
    assert outcome.drained and outcome.stored == 0
    assert await redis.zcard(shard.mailboxes) == 0
    assert await mailboxes.stale(older_than=-3600) == []
