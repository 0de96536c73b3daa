"""record_event and the relay: transactions only, id order, marks, several relays at once."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from redis.asyncio import Redis

from server.database import engine
from server.outbox.envelope import decode, project_channel
from server.outbox.events import EventType
from server.outbox.record import NOTIFY_CHANNEL, NewEvent, OutsideTransaction, record_event, record_events
from server.outbox.relay import OutboxRelay, publish_pending
from server.outbox.tables import OutboxEvent
from server.redis_client import ChannelReader, publish_all
from tests.factories import make_project
from tests.pipeline.helpers import eventually


async def _record(project_id: int, count: int) -> list[int]:
    ids = []
    async with engine().transaction():
        for index in range(count):
            ids.append(
                await record_event(
                    EventType.MESSAGE_CREATED,
                    project_id=project_id,
                    conversation_id=7,
                    seq=index + 1,
                    data={"index": index},
                )
            )
    return ids


async def test_record_event_refuses_to_run_outside_a_transaction() -> None:
    project = await make_project()
    with pytest.raises(OutsideTransaction):
        await record_event(EventType.MESSAGE_CREATED, project_id=project.id, data={})
    assert await OutboxEvent.count() == 0


async def test_a_rolled_back_transaction_leaves_no_event() -> None:
    project = await make_project()
    with pytest.raises(RuntimeError, match="boom"):
        async with engine().transaction():
            await record_event(EventType.MESSAGE_CREATED, project_id=project.id, data={})
            raise RuntimeError("boom")
    assert await OutboxEvent.count() == 0


async def test_the_notification_arrives_at_commit_and_names_the_events() -> None:
    project = await make_project()
    heard: list[str] = []
    listener = await engine().get_new_connection()
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: heard.append(args[3]))
    # Markers sent from another connection in autocommit: PostgreSQL delivers notifications in
    # commit order, so once a marker is heard, anything committed before it has been heard too.
    marker = await engine().get_new_connection()

    async def mark(payload: str) -> None:
        await marker.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload)
        await eventually(lambda: _true(payload in heard), within=30, what=f"the marker {payload!r}")

    try:
        async with engine().transaction():
            first = await record_event(EventType.MESSAGE_CREATED, project_id=project.id, data={})
            second = await record_event(EventType.MESSAGE_CREATED, project_id=project.id, data={})
            silent = await record_events(
                [NewEvent(type=EventType.MESSAGE_CREATED, project_id=project.id, data={})], notify=False
            )
            await mark("before commit")
            assert heard == ["before commit"]  # nothing of this transaction yet
        await mark("after commit")
        # one per record_events call, at commit, never for notify=False
        assert heard == ["before commit", str(first), str(second), "after commit"]
        assert silent[0] > second
    finally:
        await listener.close()
        await marker.close()


async def _true(value: bool) -> bool:
    return value


_READY, _END = b"test:ready", b"test:end"


class _Collector:
    """Subscribes to a project's channel and keeps its envelopes, with markers of its own.

    ``__aenter__`` returns once a marker published after the subscription has come back (so
    nothing published later can be missed); :meth:`end` publishes a last marker and returns what
    came before it (so nothing published earlier is still on its way).
    """

    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis, self.channel = redis, channel
        self.received: list[Any] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Collector:
        self._task = asyncio.create_task(self._read())
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait([ready, self._task], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        assert self._ready.is_set(), "the subscription never heard its own marker"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def end(self) -> list[Any]:
        assert self._task is not None
        await publish_all(self.redis, [(self.channel, _END)])
        await asyncio.wait_for(self._task, timeout=30)
        return self.received

    async def _read(self) -> None:
        pubsub = ChannelReader(self.redis)
        await pubsub.subscribe(self.channel)
        try:
            while True:
                if not self._ready.is_set():
                    await publish_all(self.redis, [(self.channel, _READY)])
                message = await pubsub.get_message(within=0.2)
                if message is None:
                    continue
                if message["data"] == _READY:
                    self._ready.set()
                elif message["data"] == _END:
                    return
                else:
                    self.received.append(decode(message["data"]))
        finally:
            await pubsub.aclose()


async def test_the_relay_publishes_in_id_order_and_marks_published(redis: Redis) -> None:
    project = await make_project()
    ids = await _record(project.id, 5)
    async with _Collector(redis, project_channel(project.id)) as collector:
        assert await publish_pending(redis) == 5
        received = await collector.end()
    assert [envelope.id for envelope in received] == ids
    assert [envelope.seq for envelope in received] == [1, 2, 3, 4, 5]
    assert received[0].type == "message.created" and received[0].project_id == project.id
    assert received[0].conversation_id == 7 and received[0].data == {"index": 0}
    assert await OutboxEvent.count().where(OutboxEvent.published_at.is_null()) == 0
    assert await publish_pending(redis) == 0


async def test_several_relays_never_publish_an_event_twice(redis: Redis) -> None:
    project = await make_project()
    ids = await _record(project.id, 300)

    async def relay() -> None:
        while await publish_pending(redis, limit=7):
            pass

    async with _Collector(redis, project_channel(project.id)) as collector:
        await asyncio.gather(*(relay() for _ in range(4)))
        received = await collector.end()  # every publish above is before the end marker
    assert sorted(envelope.id for envelope in received) == ids  # each exactly once
    assert await OutboxEvent.count().where(OutboxEvent.published_at.is_null()) == 0


async def test_the_relay_wakes_on_notify_without_waiting_for_its_sweep(redis: Redis) -> None:
    """Only the notification can publish these rows: the sweep waits an hour between passes and
    leaves rows younger than an hour alone (``claim_seconds``). So the test must not record them
    before the relay's LISTEN is registered, and waits for exactly that."""
    project = await make_project()
    relay = OutboxRelay(redis, sweep_interval=3600, claim_seconds=3600)
    relay.start()
    try:
        await eventually(lambda: _true(relay.listening), within=30, what="the relay's LISTEN")
        await _record(project.id, 3)

        async def all_published() -> bool:
            unpublished: int = await OutboxEvent.count().where(OutboxEvent.published_at.is_null())
            return unpublished == 0

        await eventually(all_published, within=30, what="the relay to publish after NOTIFY")
        assert relay.published == 3
    finally:
        await relay.stop()
