"""One code path on one server, on a Sentinel-managed pair and on a cluster (server/redis_client.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

import pytest
from redis.crc import key_slot
from saq import Job
from saq.queue.redis import RedisQueue

from server.chat.mailbox import (
    CLUSTER_DRAIN_SHARDS,
    Mailboxes,
    RateLimits,
    ReplicaAck,
    Shard,
    mailbox_key,
    shard_of_project,
)
from server.chat.schemas import MessageKind, PendingMessage, SendMessage
from server.chat.sending import MessageSender
from server.errors import Unavailable
from server.queue import EVENTS_QUEUE
from server.redis_client import ChannelReader, Keys, is_cluster, make_redis, publish_all, send_to_node_of
from server.settings import RedisSettings, SettingsError, load_settings
from tests.factories import make_project
from tests.pipeline.conftest import GENEROUS
from tests.redis_servers import SentinelPair, ValkeyCluster

pytestmark = pytest.mark.slow


def _slot(key: str) -> int:
    return int(key_slot(key.encode()))


def _visitor_message(project_id: int, uid: str) -> PendingMessage:
    return PendingMessage(
        kind=MessageKind.VISITOR,
        project_id=project_id,
        client_msg_id=uuid.uuid4(),
        body="hello",
        visitor_uid=uid,
        accepted_at=0.0,
    )


def test_the_keys_a_script_touches_together_share_a_slot_and_projects_spread() -> None:
    for project_id in range(1, 50):
        shard = shard_of_project(project_id, CLUSTER_DRAIN_SHARDS)
        script_keys = [
            Keys.dirty_mailboxes(shard.index),
            mailbox_key(_visitor_message(project_id, "v_1"), CLUSTER_DRAIN_SHARDS),
            Keys.send_limit(shard.index, "sender", f"visitor:{project_id}:v_1"),
            Keys.send_limit(shard.index, "project", str(project_id)),
            shard.mailboxes,
            shard.token,
            shard.wake,
        ]
        assert len({_slot(key) for key in script_keys}) == 1, script_keys
        presence = [
            Keys.presence_sockets(project_id, "visitor", "v_1"),
            Keys.presence_status(project_id, "visitor", "v_1"),
            Keys.visitor_presence(project_id),
            Keys.visitor_location(project_id, "v_2"),
        ]
        assert len({_slot(key) for key in presence}) == 1, presence
    # Never one tag for everything: projects and drain shards land on many slots.
    assert len({_slot(Keys.visitor_presence(project_id)) for project_id in range(1, 50)}) == 49
    shard_slots = {_slot(Shard(index).token) for index in range(CLUSTER_DRAIN_SHARDS)}
    assert len(shard_slots) == CLUSTER_DRAIN_SHARDS


def test_a_cluster_url_needs_a_queue_url_for_saq() -> None:
    env = {
        "DATABASE_URL": "postgres://x/y",
        "SECRET_KEY": "k" * 40,
        "REDIS_URL": "redis+cluster://127.0.0.1:7000",
    }
    with pytest.raises(SettingsError, match="QUEUE_REDIS_URL"):
        load_settings(env)
    settings = load_settings({**env, "QUEUE_REDIS_URL": "redis://127.0.0.1:6380/0"})
    assert settings.redis.url.startswith("redis+cluster://")
    assert settings.queue_redis.url == "redis://127.0.0.1:6380/0"
    with pytest.raises(SettingsError, match="QUEUE_REDIS_URL"):
        load_settings({**env, "QUEUE_REDIS_URL": "redis+cluster://127.0.0.1:7000"})
    single = load_settings({**env, "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert single.queue_redis == single.redis


async def test_the_cluster_client_runs_the_mailbox_script_and_sharded_pubsub(cluster: ValkeyCluster) -> None:
    redis = make_redis(RedisSettings(url=cluster.url, max_connections=32))
    try:
        assert is_cluster(redis)
        mailboxes = Mailboxes(redis)
        messages = [_visitor_message(project_id, "v_1") for project_id in range(1, 13)]
        appended = await mailboxes.append(messages, RateLimits())
        assert appended.waits == [0] * len(messages)
        # Twelve projects spread over several shards, so over several of the cluster's nodes.
        assert len(appended.woken) > 1
        owners = {cluster.primary_for(shard.token).port for shard in appended.woken}
        assert len(owners) > 1
        keys = [mailboxes.key_of(message) for message in messages]
        assert sorted(await mailboxes.stale(older_than=-3600)) == sorted(keys)
        taken = await mailboxes.read(keys, 10)
        assert {key: len(items) for key, items in taken.items()} == dict.fromkeys(keys, 1)
        await mailboxes.pop(taken)
        assert await mailboxes.stale(older_than=-3600) == []

        reader = ChannelReader(redis)
        channels = [Keys.project_events(project_id) for project_id in (1, 2, 3)]
        await reader.subscribe(*channels)
        await publish_all(
            redis, [(channel, f"event {index}".encode()) for index, channel in enumerate(channels * 2)]
        )
        heard: list[tuple[bytes, bytes]] = []
        while len(heard) < 6 and (message := await reader.get_message(within=2.0)) is not None:
            heard.append((message["channel"], message["data"]))
        await reader.aclose()
        assert sorted(heard) == sorted(
            (channel.encode(), f"event {index}".encode()) for index, channel in enumerate(channels * 2)
        )
        # Each channel's messages in the order published.
        for index, channel in enumerate(channels):
            assert [data for name, data in heard if name == channel.encode()] == [
                f"event {index}".encode(),
                f"event {index + 3}".encode(),
            ]
    finally:
        await redis.aclose()


async def test_a_burst_beyond_the_cluster_pool_waits_for_connections(cluster: ValkeyCluster) -> None:
    """300 commands, pipelines and direct node writes at once through 4 connections per node:
    each waits its turn. (redis-py alone raises MaxConnectionsError, and its pipeline then closes
    every connection of the client and sleeps before retrying.)"""
    redis = make_redis(RedisSettings(url=cluster.url, max_connections=4))
    run = uuid.uuid4().hex[:8]
    try:
        await redis.ping()
        nodes = cast(Any, redis).get_nodes()

        async def pipelined(index: int) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                for project_id in range(1, 7):  # keys on every primary
                    pipe.incr(f"burst:{run}:{{p:{project_id}}}:pipe")
                await pipe.execute()

        async def direct(index: int) -> None:
            key = f"burst:{run}:{{p:{index % 7}}}:direct"
            await send_to_node_of(cast(Any, redis), key, [("INCR", key)])

        await asyncio.gather(
            *(redis.incr(f"burst:{run}:{{p:{index % 7}}}:one") for index in range(100)),
            *(pipelined(index) for index in range(100)),
            *(direct(index) for index in range(100)),
        )
        assert sum([int(await redis.get(f"burst:{run}:{{p:{n}}}:one") or 0) for n in range(7)]) == 100
        assert [int(await redis.get(f"burst:{run}:{{p:{n}}}:pipe") or 0) for n in range(1, 7)] == [100] * 6
        assert sum([int(await redis.get(f"burst:{run}:{{p:{n}}}:direct") or 0) for n in range(7)]) == 100
        assert all(len(node._connections) <= 4 for node in nodes)
        assert cast(Any, redis).get_nodes() == nodes, "the client was closed and its nodes made again"
    finally:
        await redis.aclose()


async def test_saq_0_26_does_not_run_on_a_cluster(cluster: ValkeyCluster) -> None:
    """What we measured (docs/scaling.md): hence QUEUE_REDIS_URL. If this fails, SAQ learned it."""
    redis: Any = make_redis(RedisSettings(url=cluster.url, max_connections=8))
    queue = RedisQueue(redis, name="{q}live-chat-events-queue")
    try:
        # Even with the queue name tagged, a job's abort key (saq:abort:<key>) has no queue name.
        with pytest.raises(Exception, match=r"same (key )?slot"):
            await queue.enqueue(Job("persist_messages", kwargs={}))
    finally:
        await redis.aclose()


async def test_the_sentinel_url_reaches_the_primary(sentinel: SentinelPair) -> None:
    redis = make_redis(RedisSettings(url=sentinel.url, max_connections=4))
    try:
        await redis.set("parley:test:sentinel", b"written")
        assert sentinel.primary is not None
        assert sentinel.primary.client().get("parley:test:sentinel") == "written"
        assert await redis.get("parley:test:sentinel") == b"written"
        await redis.delete("parley:test:sentinel")
    finally:
        await redis.aclose()


async def test_with_replica_acks_a_message_no_replica_confirmed_is_not_acknowledged(
    redis: Any, queue_redis: Any
) -> None:
    """The test run's own server has no replica: WAIT 1 confirms nothing, so the send is a 503."""
    project = await make_project()
    queue = RedisQueue(queue_redis, name=EVENTS_QUEUE)
    command = SendMessage(kind=MessageKind.VISITOR, project_id=project.id, visitor_uid="v_w", body="hello")
    sender = MessageSender(queue, redis, limits=GENEROUS, replica_ack=ReplicaAck(replicas=1, timeout_ms=50))
    with pytest.raises(Unavailable, match="replicate"):
        await sender.send(command)
    # Without the setting the same message is acknowledged once the primary holds it.
    plain = MessageSender(queue, redis, limits=GENEROUS)
    assert (await plain.send(command)).client_msg_id is not None
    await sender.aclose()
    await plain.aclose()
