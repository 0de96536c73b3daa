"""The realtime node's event subscriptions on a real Valkey cluster (server/realtime/shards.py).

In-process: :class:`ShardedSubscriptions` on a three-primary cluster, driven the way the fan-out
drives it (acquire, wait for confirmation), checked against each node's own view (``PUBSUB
SHARDCHANNELS``, ``CLIENT LIST``) and against ``SPUBLISH`` deliveries; then the cluster changes
under it: a slot moves to another primary, a primary is killed and its replica promoted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.realtime.shards import ShardedSubscriptions
from server.redis_client import Keys, make_redis, publish_all
from server.settings import RedisSettings
from tests.processes import stop
from tests.redis_servers import ValkeyCluster, ValkeyNode, _command, valkey_cluster

pytestmark = pytest.mark.slow

NODE = Keys.realtime_node("test-shards")


class Node:
    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.gaps = 0
        self.arrived = asyncio.Event()
        self.subscriptions: ShardedSubscriptions


@contextlib.asynccontextmanager
async def running_node(cluster: ValkeyCluster, check_seconds: float = 3600) -> AsyncIterator[Node]:
    subscriber = make_redis(RedisSettings(url=cluster.url, max_connections=1))
    node = Node()

    async def on_message(channel: str, data: bytes) -> None:
        node.received.append((channel, data))
        node.arrived.set()

    def on_gap() -> None:
        node.gaps += 1

    node.subscriptions = ShardedSubscriptions(
        subscriber, node_channel=NODE, on_message=on_message, on_gap=on_gap, check_seconds=check_seconds
    )
    owner = asyncio.create_task(node.subscriptions.run())
    try:
        await asyncio.wait_for(node.subscriptions.became_live(), 10)
        yield node
    finally:
        owner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await owner
        await subscriber.aclose()


def shard_channels(node: ValkeyNode) -> set[str]:
    return set(_command(node, "PUBSUB SHARDCHANNELS", "parley:*"))


def channels_on(cluster: ValkeyCluster, count: int, primaries: int) -> list[str]:
    """``count`` project channels whose slots live on ``primaries`` distinct primaries."""
    by_owner: dict[int, list[str]] = {}
    project = 1
    while sum(len(v) for v in by_owner.values()) < count:
        channel = Keys.project_events(project)
        owner = cluster.primary_for(channel).port
        if owner in by_owner or len(by_owner) < primaries:
            by_owner.setdefault(owner, []).append(channel)
        project += 1
    return [channel for channels in by_owner.values() for channel in channels]


async def until(predicate: Any, what: str, within: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def delivered(node: Node, publisher: Any, channel: str, body: bytes, within: float = 10) -> None:
    """SPUBLISH ``body`` (again until it arrives: a shard may be moving) and see it arrive."""
    deadline = asyncio.get_running_loop().time() + within
    while (channel, body) not in node.received:
        assert asyncio.get_running_loop().time() < deadline, f"{body!r} never arrived on {channel}"
        node.arrived.clear()
        with contextlib.suppress(Exception):
            await publish_all(publisher, [(channel, body)])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(node.arrived.wait(), 0.5)


async def test_a_node_subscribes_only_on_the_shards_owning_its_projects(cluster: ValkeyCluster) -> None:
    publisher = make_redis(RedisSettings(url=cluster.url, max_connections=4))
    try:
        async with running_node(cluster) as node:
            subscriptions = node.subscriptions
            # Projects whose channels live on two of the three primaries (plus the node channel's).
            channels = channels_on(cluster, 6, primaries=2)
            assert await subscriptions.wait_confirmed(subscriptions.acquire(channels), 10)
            for primary in cluster.primary_nodes():
                on_this = {c for c in [*channels, NODE] if cluster.primary_for(c) is primary}
                assert shard_channels(primary) == on_this, primary.address
                pubsub = [c for c in primary.client().client_list(_type="pubsub") if int(c.get("ssub", 0))]
                # One subscriber connection on each shard that owns something we need, none elsewhere.
                assert len(pubsub) == (1 if on_this else 0), (primary.address, pubsub)
                if on_this:
                    assert int(pubsub[0]["ssub"]) == len(on_this)
            for index, channel in enumerate(channels):
                await delivered(node, publisher, channel, f"event {index}".encode())
            assert await subscriptions.check_now() == []
            # The last user of a channel leaves: the shard drops it; the others stay.
            subscriptions.release([channels[0]])
            await until(lambda: _gone(cluster, channels[0]), "the release to SUNSUBSCRIBE")
            assert await subscriptions.check_now() == []
            assert node.gaps == 0
    finally:
        await publisher.aclose()


async def _gone(cluster: ValkeyCluster, channel: str) -> bool:
    return channel not in shard_channels(cluster.primary_for(channel))


async def test_a_channel_dropped_behind_the_owners_back_is_found_and_subscribed_again(
    cluster: ValkeyCluster,
) -> None:
    publisher = make_redis(RedisSettings(url=cluster.url, max_connections=4))
    try:
        async with running_node(cluster) as node:
            subscriptions = node.subscriptions
            [channel] = channels_on(cluster, 1, primaries=1)
            assert await subscriptions.wait_confirmed(subscriptions.acquire([channel]), 10)
            name = subscriptions.shard_of(channel)
            assert name is not None
            shard = subscriptions._shards[name].subscriptions
            await shard._connection.send_command("SUNSUBSCRIBE", channel, check_health=False)
            await until(lambda: _gone(cluster, channel), "Redis to drop the channel")
            problems = await subscriptions.check_now()
            assert problems and any(channel in problem for problem in problems), problems
            await until(lambda: _back(cluster, channel), "the check to subscribe again")
            assert node.gaps >= 1  # sockets are told to sync what they missed meanwhile
            await delivered(node, publisher, channel, b"after the repair")
    finally:
        await publisher.aclose()


async def _back(cluster: ValkeyCluster, channel: str) -> bool:
    return channel in shard_channels(cluster.primary_for(channel))


def _node_id(node: ValkeyNode) -> str:
    return str(_command(node, "CLUSTER MYID"))


async def test_a_slot_moved_to_another_primary_takes_its_subscription_along(cluster: ValkeyCluster) -> None:
    publisher = make_redis(RedisSettings(url=cluster.url, max_connections=4))
    [channel] = channels_on(cluster, 1, primaries=1)
    source = cluster.primary_for(channel)
    target = next(node for node in cluster.primary_nodes() if node is not source)
    slot = int(_command(source, "CLUSTER KEYSLOT", channel))
    try:
        async with running_node(cluster) as node:
            subscriptions = node.subscriptions
            assert await subscriptions.wait_confirmed(subscriptions.acquire([channel]), 10)
            assert subscriptions.shard_of(channel) == f"127.0.0.1:{source.port}"
            await delivered(node, publisher, channel, b"before the move")
            # The slot holds no keys: hand it over (what valkey-cli --cluster reshard ends with).
            target_id = _node_id(target)
            for each in cluster.primary_nodes():
                _command(each, "CLUSTER SETSLOT", slot, "NODE", target_id)
            await until(
                lambda: _placed_on(subscriptions, channel, target), "the subscription to follow the slot"
            )
            assert channel in shard_channels(target) and channel not in shard_channels(source)
            await delivered(node, publisher, channel, b"after the move")
            assert node.gaps >= 1 and subscriptions.moves >= 1
            assert await subscriptions.check_now() == []
    finally:
        source_id = _node_id(source)
        for each in cluster.primary_nodes():
            _command(each, "CLUSTER SETSLOT", slot, "NODE", source_id)
        cluster.wait_ok()
        await publisher.aclose()


async def _placed_on(subscriptions: ShardedSubscriptions, channel: str, node: ValkeyNode) -> bool:
    return subscriptions.shard_of(channel) == f"127.0.0.1:{node.port}" and subscriptions._confirmed(channel)


@pytest.fixture
def replicated_cluster() -> Iterator[ValkeyCluster]:
    with valkey_cluster(primaries=3, replicas=1) as started:
        yield started


async def test_a_failed_primary_s_channels_move_to_the_promoted_replica(
    replicated_cluster: ValkeyCluster,
) -> None:
    cluster = replicated_cluster
    channels = channels_on(cluster, 4, primaries=3)
    victim = cluster.primary_for(channels[0])
    on_victim = [c for c in channels if cluster.primary_for(c) is victim]
    publisher = make_redis(RedisSettings(url=cluster.url, max_connections=4))
    try:
        async with running_node(cluster) as node:
            subscriptions = node.subscriptions
            assert await subscriptions.wait_confirmed(subscriptions.acquire(channels), 10)
            promoted = await asyncio.to_thread(cluster.fail_over, victim, restart=False)
            for channel in on_victim:
                await until(
                    lambda channel=channel: _placed_on(subscriptions, channel, promoted),
                    f"{channel} to move to the promoted replica",
                )
            for index, channel in enumerate(channels):
                await delivered(node, publisher, channel, f"after the failover {index}".encode())
            assert node.gaps >= 1  # sockets sync what was published while the shard was away
            await until(lambda: _clean(subscriptions), "a clean check after the failover")
    finally:
        await publisher.aclose()


async def _clean(subscriptions: ShardedSubscriptions) -> bool:
    return await subscriptions.check_now() == []


async def test_a_gateway_on_a_cluster_refuses_sockets_while_it_cannot_read_and_delivers_after(
    settings: Any, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """The whole cluster goes away and comes back (same nodes, same slots): 503 meanwhile, then live."""
    from tests.factories import make_project
    from tests.realtime.conftest import connected, launch_gateway
    from tests.realtime.helpers import ALL_EVENTS, message_event, publish, visitor_auth

    with valkey_cluster(primaries=3) as own:
        env = {**subprocess_env, "REDIS_URL": own.url, "QUEUE_REDIS_URL": settings.queue_redis.url}
        gateway = launch_gateway(env, tmp_path / "gateway.log")
        publisher = make_redis(RedisSettings(url=own.url, max_connections=4))
        project = await make_project()
        try:
            async with aiohttp.ClientSession() as http:

                async def refused() -> bool:
                    try:
                        async with http.ws_connect(gateway.ws_url):
                            return False
                    except aiohttp.WSServerHandshakeError as error:
                        return error.status == 503
                    except aiohttp.ClientError:
                        return False

                for node in own.nodes:
                    node.kill()
                await until(refused, "the gateway to refuse upgrades while the cluster is down")
                for node in own.nodes:
                    node.start()
                own.wait_ok()
            auth = visitor_auth(settings, project.id, "v_cluster")
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                try:
                    async with connected(gateway, "/visitor", auth, ALL_EVENTS) as (_, rx):
                        await publish(publisher, message_event(project.id, 1, 1, visitor_uid="v_cluster"))
                        await rx.wait_for(lambda: rx.named("message.created"), within=10)
                        break
                except (AssertionError, Exception):
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            assert "Traceback" not in gateway.output(), gateway.output()[-3000:]
        finally:
            await publisher.aclose()
            stop(gateway.process)
