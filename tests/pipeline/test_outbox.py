"""record_event and the relay: transactions only, id order, marks, several relays at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from server.database import engine
from server.outbox.envelope import decode, project_channel
from server.outbox.events import EventType
from server.outbox.record import NOTIFY_CHANNEL, NewEvent, OutsideTransaction, record_event, record_events
from server.outbox.relay import OutboxRelay, publish_pending
from server.outbox.tables import OutboxEvent
from server.redis_client import ChannelReader
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
    try:
        async with engine().transaction():
            first = await record_event(EventType.MESSAGE_CREATED, project_id=project.id, data={})
            second = await record_event(EventType.MESSAGE_CREATED, project_id=project.id, data={})
            silent = await record_events(
                [NewEvent(type=EventType.MESSAGE_CREATED, project_id=project.id, data={})], notify=False
            )
            await asyncio.sleep(0.2)
            assert heard == []
        await eventually(lambda: _true(len(heard) == 2), within=10, what="NOTIFY after commit")
        await asyncio.sleep(0.2)
        assert heard == [str(first), str(second)]  # one per record_events call, never for notify=False
        assert silent[0] > second
    finally:
        await listener.close()


async def _true(value: bool) -> bool:
    return value


async def _collect(redis: Redis, channel: str, into: list[Any], stop: asyncio.Event) -> None:
    pubsub = ChannelReader(redis)
    await pubsub.subscribe(channel)
    try:
        while not stop.is_set():
            message = await pubsub.get_message(within=0.1)
            if message is not None:
                into.append(decode(message["data"]))
    finally:
        await pubsub.aclose()


async def test_the_relay_publishes_in_id_order_and_marks_published(redis: Redis) -> None:
    project = await make_project()
    ids = await _record(project.id, 5)
    received: list[Any] = []
    stop = asyncio.Event()
    collector = asyncio.create_task(_collect(redis, project_channel(project.id), received, stop))
    await asyncio.sleep(0.2)
    assert await publish_pending(redis) == 5
    await eventually(lambda: _true(len(received) == 5), within=10, what="5 envelopes")
    stop.set()
    await collector
    assert [envelope.id for envelope in received] == ids
    assert [envelope.seq for envelope in received] == [1, 2, 3, 4, 5]
    assert received[0].type == "message.created" and received[0].project_id == project.id
    assert received[0].conversation_id == 7 and received[0].data == {"index": 0}
    assert await OutboxEvent.count().where(OutboxEvent.published_at.is_null()) == 0
    assert await publish_pending(redis) == 0


async def test_several_relays_never_publish_an_event_twice(redis: Redis) -> None:
    project = await make_project()
    ids = await _record(project.id, 300)
    received: list[Any] = []
    stop = asyncio.Event()
    collector = asyncio.create_task(_collect(redis, project_channel(project.id), received, stop))
    await asyncio.sleep(0.2)

    async def relay() -> None:
        while await publish_pending(redis, limit=7):
            pass

    await asyncio.gather(*(relay() for _ in range(4)))
    await eventually(lambda: _true(len(received) >= 300), within=10, what="300 envelopes")
    await asyncio.sleep(0.3)
    stop.set()
    await collector
    assert sorted(envelope.id for envelope in received) == ids  # each exactly once
    assert await OutboxEvent.count().where(OutboxEvent.published_at.is_null()) == 0


async def test_the_relay_wakes_on_notify_without_waiting_for_its_sweep(redis: Redis) -> None:
    project = await make_project()
    relay = OutboxRelay(redis, sweep_interval=3600)
    relay.start()
    try:
        await asyncio.sleep(0.3)  # listening
        await _record(project.id, 3)

        async def all_published() -> bool:
            unpublished: int = await OutboxEvent.count().where(OutboxEvent.published_at.is_null())
            return unpublished == 0

        await eventually(all_published, within=20, what="the relay to publish after NOTIFY")
        assert relay.published == 3
    finally:
        await relay.stop()
