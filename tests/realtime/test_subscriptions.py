"""The node's event subscriptions: one owner task, checked against Redis's own view, repaired.

In-process tests drive :class:`Subscriptions` on the test run's real Redis and make Redis's view
differ from the node's bookkeeping behind the owner's back (what issue #9 found in production:
Redis holding a project's channel on a connection nobody read); the gateway test checks that
no socket is accepted while the node receives no events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from server.realtime.subscriptions import Subscriptions
from server.redis_client import make_redis
from tests.factories import make_project
from tests.realtime.conftest import GatewayProcess, connected
from tests.realtime.helpers import visitor_auth

NODE = "parley:test:node:subscriptions"
CHANNEL = "parley:test:events:one"


class Node:
    def __init__(self, subscriptions: Subscriptions) -> None:
        self.subscriptions = subscriptions
        self.received: list[tuple[str, bytes]] = []
        self.gaps = 0
        self.arrived = asyncio.Event()


@contextlib.asynccontextmanager
async def running_node(settings: Any, redis: Redis, check_seconds: float = 3600) -> AsyncIterator[Node]:
    subscriber = make_redis(settings.redis, max_connections=1)
    node: Node

    async def on_message(channel: str, data: bytes) -> None:
        node.received.append((channel, data))
        node.arrived.set()

    def on_gap() -> None:
        node.gaps += 1

    subscriptions = Subscriptions(
        subscriber,
        redis,
        node_channel=NODE,
        on_message=on_message,
        on_gap=on_gap,
        check_seconds=check_seconds,
    )
    node = Node(subscriptions)
    owner = asyncio.create_task(subscriptions.run())
    try:
        await asyncio.wait_for(subscriptions.became_live(), 10)
        yield node
    finally:
        owner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await owner
        await subscriber.aclose()


async def subscribers(redis: Redis, channel: str) -> int:
    return int(dict(await redis.pubsub_numsub(channel))[channel.encode()])


async def until(predicate: Any, what: str, within: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def delivered(node: Node, redis: Redis, channel: str, body: bytes) -> None:
    node.arrived.clear()
    await redis.publish(channel, body)
    await asyncio.wait_for(node.arrived.wait(), 5)
    assert node.received[-1] == (channel, body)


async def test_a_channel_redis_lost_is_found_logged_and_subscribed_again(
    settings: Any, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_node(settings, redis) as node:
        subscriptions = node.subscriptions
        assert await subscriptions.wait_confirmed(subscriptions.acquire([CHANNEL]), 5)
        assert await subscriptions.check_now() == []
        await delivered(node, redis, CHANNEL, b"before")
        # Behind the owner's back: Redis no longer sends the channel to this node.
        await subscriptions._connection.send_command("UNSUBSCRIBE", CHANNEL, check_health=False)
        await until(lambda: _zero(redis, CHANNEL), "Redis to drop the channel")
        with caplog.at_level(logging.WARNING, logger="server.realtime.subscriptions"):
            problems = await subscriptions.check_now()
        assert problems and any(CHANNEL in problem for problem in problems), problems
        assert any(
            "out of step with Redis" in r.getMessage() and CHANNEL in r.getMessage() for r in caplog.records
        )
        assert await subscribers(redis, CHANNEL) == 1
        assert node.gaps == 1  # sockets are told to sync what they missed meanwhile
        await delivered(node, redis, CHANNEL, b"after the repair")
        assert await subscriptions.check_now() == []


async def _zero(redis: Redis, channel: str) -> bool:
    return await subscribers(redis, channel) == 0


async def test_the_periodic_check_repairs_by_itself(settings: Any, redis: Redis) -> None:
    async with running_node(settings, redis, check_seconds=0.2) as node:
        subscriptions = node.subscriptions
        assert await subscriptions.wait_confirmed(subscriptions.acquire([CHANNEL]), 5)
        await subscriptions._connection.send_command("UNSUBSCRIBE", CHANNEL, check_health=False)
        await until(lambda: _zero(redis, CHANNEL), "Redis to drop the channel")
        await until(lambda: _one(redis, CHANNEL), "the periodic check to subscribe again")
        assert subscriptions.repairs >= 1
        await delivered(node, redis, CHANNEL, b"repaired")


async def _one(redis: Redis, channel: str) -> bool:
    return await subscribers(redis, channel) == 1


async def test_released_channels_are_unsubscribed_and_a_killed_connection_comes_back(
    settings: Any, redis: Redis
) -> None:
    async with running_node(settings, redis) as node:
        subscriptions = node.subscriptions
        assert await subscriptions.wait_confirmed(subscriptions.acquire([CHANNEL]), 5)
        subscriptions.acquire([CHANNEL])
        subscriptions.release([CHANNEL])
        assert await subscriptions.check_now() == []
        assert await subscribers(redis, CHANNEL) == 1  # one user left
        subscriptions.release([CHANNEL])
        await until(lambda: _zero(redis, CHANNEL), "the last release to unsubscribe")
        assert await subscriptions.check_now() == []
        assert await subscriptions.wait_confirmed(subscriptions.acquire([CHANNEL]), 5)
        await redis.client_kill_filter(_type="pubsub")
        await until(lambda: _reconnected(subscriptions), "the owner to reconnect")
        assert node.gaps == 1
        assert await subscribers(redis, NODE) == 1 and await subscribers(redis, CHANNEL) == 1
        await delivered(node, redis, CHANNEL, b"after the reconnect")


async def _reconnected(subscriptions: Subscriptions) -> bool:
    return subscriptions.connects >= 2 and subscriptions.live


async def test_many_concurrent_joins_share_one_connection(settings: Any, redis: Redis) -> None:
    """The race of issue #9 in miniature: many first subscribes at once, one connection in Redis."""
    async with running_node(settings, redis) as node:
        subscriptions = node.subscriptions
        channels = [f"parley:test:events:{n}" for n in range(50)]
        results = await asyncio.gather(
            *(subscriptions.wait_confirmed(subscriptions.acquire([c]), 5) for c in channels)
        )
        assert all(results)
        pubsub_clients = [c for c in await redis.client_list(_type="pubsub") if int(c["sub"])]
        assert len(pubsub_clients) == 1 and int(pubsub_clients[0]["sub"]) == len(channels) + 1
        assert await subscriptions.check_now() == []


@pytest.mark.slow
async def test_no_socket_is_accepted_while_the_node_receives_no_events(
    gateway: GatewayProcess, settings: Any, stack: Any
) -> None:
    if stack.embedded is None:
        pytest.skip("stops the embedded Valkey; REDIS_URL points at an external server")
    project = await make_project()
    await asyncio.to_thread(stack.embedded.stop_valkey)
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

            await until(refused, "the gateway to refuse upgrades while Redis is down")
            await asyncio.sleep(2)  # a few rounds of every retrying loop (0.05-2 s apart)
    finally:
        await asyncio.to_thread(stack.embedded.start_valkey)
    auth = visitor_auth(settings, project.id, "v_back")
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        try:
            async with connected(gateway, "/visitor", auth) as (client, _):
                answer = await client.call("navigate", {"url": "https://shop.example/"}, namespace="/visitor")
                assert answer == {"ok": True}
                break
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
    await until(lambda: _said(gateway, "available again"), "the end of the outage to be logged")
    log = gateway.output()
    # One line when the outage starts per thing that noticed it, none per retry, no traceback.
    assert "Traceback" not in log, log[-3000:]
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert 1 <= len(errors) <= 2 and all("is unavailable" in line for line in errors), "\n".join(errors)


async def _said(gateway: GatewayProcess, text: str) -> bool:
    return text in gateway.output()
