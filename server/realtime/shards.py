"""The node's event subscriptions on a Redis Cluster: sharded pub/sub, one owner per shard.

On a cluster the outbox relay and the gateways publish a project's events with ``SPUBLISH``
(:func:`server.redis_client.publish_all`), which reaches only the primary owning the channel's
slot (and its replicas). So a realtime node subscribes on each primary that owns a channel its
sockets need, and on no other: one :class:`~server.realtime.subscriptions.Subscriptions` per such
primary, in ``sharded`` mode, each the one task that owns its connection (issue #9's rule, kept
per shard). This class is the owner of the set of shards: it alone reads the cluster's slot map,
decides which shard holds which channel, starts and stops the shards' owners, and moves channels
when the map changes.

Why not redis-py's ``RedisCluster.pubsub()``: its per-node ``PubSub`` objects reconnect and
resubscribe inside whichever task calls them and ``get_sharded_message`` polls the nodes in turn,
each with its own timeout; the single-owner design (and a read that never waits on a quiet shard
while another has messages) needs a reader per shard connection.

The slot map changes on a failover (the dead primary's connection fails; a replica takes its
slots) and on a slot migration (Redis sends ``SUNSUBSCRIBE`` for the moved slot's channels, or
answers ``MOVED``). Either way a shard's owner says so (``on_trouble``) and this owner re-reads the
map (``CLUSTER SLOTS`` through redis-py's nodes manager), moves each channel whose owner changed,
waits until the new shard confirmed them, and asks sockets to ``sync`` what they missed. The same
comparison runs every ``check_seconds``, besides each shard's own check (``PUBSUB SHARDNUMSUB`` and
``CLIENT LIST``'s ``ssub`` on its node).

:attr:`live` (the gateway accepts sockets only then) is the node channel's shard being subscribed
and read; a socket joining a project on a shard that is failing over waits for its confirmation
(up to the fan-out's limit) and is told to ``sync`` once the shard is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.crc import key_slot

from server.outage import Outage
from server.realtime.background import cancel_all
from server.realtime.subscriptions import (
    CHECK_SECONDS,
    RETRY_SECONDS,
    OnMessage,
    SubscriberLost,
    Subscriptions,
)

log = logging.getLogger(__name__)

MOVE_CONFIRM_SECONDS = 5.0


@dataclass
class Shard:
    """One primary's subscription owner, its two single-node clients and its task."""

    name: str
    subscriptions: Subscriptions
    clients: tuple[Redis, Redis]
    task: asyncio.Task[None]


def _node_client(node: Any) -> Redis:
    """A plain client of one cluster node (its address, credentials and TLS settings; one connection)."""
    settings = node.connection_kwargs
    kwargs = {key: value for key, value in settings.items() if key.startswith("ssl_")}
    for key in ("username", "password", "credential_provider", "socket_connect_timeout"):
        if settings.get(key) is not None:
            kwargs[key] = settings[key]
    pool = BlockingConnectionPool(
        host=node.host,
        port=node.port,
        connection_class=node.connection_class,
        max_connections=1,
        timeout=5,
        **kwargs,
    )
    return Redis(connection_pool=pool)


class ShardedSubscriptions:
    """The interface of :class:`Subscriptions` (what the fan-out uses), over a cluster's primaries."""

    def __init__(
        self,
        cluster: Redis,
        *,
        node_channel: str,
        on_message: OnMessage,
        on_gap: Callable[[], None],
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self._cluster: Any = cluster
        self._node_channel = node_channel
        self._on_message = on_message
        self._on_gap = on_gap
        self.check_seconds = check_seconds
        self._needed: dict[str, int] = {}
        self._placed: dict[str, str] = {}
        """channel -> name of the shard (primary) whose owner holds it."""
        self._shards: dict[str, Shard] = {}
        self._changed = asyncio.Event()
        self._trouble = asyncio.Event()
        self._check_now = asyncio.Event()
        self._check_requests: list[asyncio.Future[list[str]]] = []
        self._outage = Outage(log, "Redis Cluster (the realtime node's slot map)")
        self.moves = 0
        self.stopping = False

    # -- what sockets need (synchronous) ------------------------------------------------------

    def acquire(self, channels: Iterable[str]) -> list[str]:
        """Count one more user of each channel; returns those not yet confirmed by their shard."""
        waiting = []
        for channel in channels:
            count = self._needed.get(channel, 0)
            self._needed[channel] = count + 1
            if count == 0:
                self._changed.set()
            if not self._confirmed(channel):
                waiting.append(channel)
        return waiting

    def release(self, channels: Iterable[str]) -> None:
        for channel in channels:
            count = self._needed.get(channel, 0) - 1
            if count <= 0:
                self._needed.pop(channel, None)
                self._changed.set()
            else:
                self._needed[channel] = count

    def _confirmed(self, channel: str) -> bool:
        shard = self._shards.get(self._placed.get(channel, ""))
        return shard is not None and shard.subscriptions.is_confirmed(channel)

    async def wait_confirmed(self, channels: list[str], within: float) -> bool:
        """Wait until the shard owning each channel confirmed it; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        pending = [channel for channel in channels if not self._confirmed(channel)]
        while pending:
            by_shard: dict[str, list[str]] = {}
            for channel in pending:
                by_shard.setdefault(self._placed.get(channel, ""), []).append(channel)
            left = deadline - loop.time()
            if left <= 0:
                return False
            waits = [
                self._shards[name].subscriptions.wait_confirmed(group, min(left, 0.25))
                for name, group in by_shard.items()
                if name in self._shards
            ]
            if waits:
                await asyncio.gather(*waits)
            else:
                await asyncio.sleep(min(left, 0.02))  # not placed yet: the owner places it now
            pending = [channel for channel in pending if not self._confirmed(channel)]
        return True

    @property
    def live(self) -> bool:
        """The node channel's shard is subscribed and read (read afresh: a shard may just have failed)."""
        shard = self._shards.get(self._placed.get(self._node_channel, ""))
        return shard is not None and shard.subscriptions.live

    async def became_live(self) -> None:
        while not self.live:
            shard = self._shards.get(self._placed.get(self._node_channel, ""))
            if shard is None:
                await asyncio.sleep(0.01)  # the owner is placing the node channel
                continue
            with contextlib.suppress(TimeoutError):  # the shard may be replaced meanwhile
                await asyncio.wait_for(shard.subscriptions.became_live(), 0.5)

    def needed(self) -> frozenset[str]:
        return frozenset(self._needed)

    @property
    def connects(self) -> int:
        return sum(shard.subscriptions.connects for shard in self._shards.values())

    @property
    def repairs(self) -> int:
        return sum(shard.subscriptions.repairs for shard in self._shards.values())

    def shard_of(self, channel: str) -> str | None:
        """The primary (``host:port``) whose connection holds ``channel``, if placed."""
        return self._placed.get(channel)

    # -- the owner task --------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the slot map; keep each needed channel on the shard that owns its slot."""
        loop = asyncio.get_running_loop()
        attempt = 0
        next_check = loop.time() + self.check_seconds
        try:
            while not self.stopping:
                try:
                    refresh = self._trouble.is_set() or not self._shards or loop.time() >= next_check
                    self._trouble.clear()
                    if refresh:
                        await self._cluster.nodes_manager.initialize()
                    moved = await self._place()
                    self._outage.recovered()
                    attempt = 0
                    if moved:
                        await self._confirm_moved(moved)
                    if loop.time() >= next_check or self._check_now.is_set():
                        self._check_now.clear()
                        requests, self._check_requests = self._check_requests, []
                        problems = await self._check()
                        for future in requests:
                            if not future.done():
                                future.set_result(problems)
                        next_check = loop.time() + self.check_seconds
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    self._outage.failed(error)
                    await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                    attempt += 1
                    continue
                await self._wait(next_check)
        finally:
            await self._stop_all()

    async def _wait(self, next_check: float) -> None:
        loop = asyncio.get_running_loop()
        # While a shard is not live, look at the slot map again now and then: its primary may
        # be gone for good (failover), and its owner's own retries can never reach the new one.
        unhealthy = any(not shard.subscriptions.live for shard in self._shards.values())
        timeout = max(0.0, next_check - loop.time())
        if unhealthy:
            timeout = min(timeout, 0.5)
        events = [self._changed, self._trouble, self._check_now]
        waits = [loop.create_task(event.wait()) for event in events]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        self._changed.clear()
        if any(not shard.subscriptions.live or shard.task.done() for shard in self._shards.values()):
            self._trouble.set()

    def _owner_of(self, channel: str) -> Any:
        slot = key_slot(channel.encode())
        nodes = self._cluster.nodes_manager.slots_cache.get(slot)
        if not nodes:
            raise ConnectionError(f"the cluster's slot map has no node for slot {slot}")
        return nodes[0]  # the primary

    async def _place(self) -> list[str]:
        """Put every needed channel on its slot owner's shard; returns the channels moved."""
        wanted = {self._node_channel, *self._needed}
        moved: list[str] = []
        for channel in list(self._placed):
            if channel not in wanted:
                name = self._placed.pop(channel)
                if name in self._shards:
                    self._shards[name].subscriptions.release([channel])
        for channel in wanted:
            node = self._owner_of(channel)
            current = self._placed.get(channel)
            if current == node.name:
                continue
            if current is not None:
                if current in self._shards:
                    self._shards[current].subscriptions.release([channel])
                moved.append(channel)
            shard = self._shards.get(node.name) or self._start_shard(node)
            shard.subscriptions.acquire([channel])
            self._placed[channel] = node.name
        holding = set(self._placed.values())
        for name in [name for name in self._shards if name not in holding]:
            await self._stop_shard(self._shards.pop(name))
        return moved

    def _start_shard(self, node: Any) -> Shard:
        subscriber, checker = _node_client(node), _node_client(node)
        subscriptions = Subscriptions(
            subscriber,
            checker,
            node_channel=None,
            on_message=self._on_message,
            on_gap=self._on_gap,
            check_seconds=self.check_seconds,
            sharded=True,
            on_trouble=self._trouble.set,
            name=f"shard {node.name} of the realtime node's event subscription",
        )
        task = asyncio.get_running_loop().create_task(subscriptions.run(), name=f"fanout-shard-{node.name}")
        shard = Shard(node.name, subscriptions, (subscriber, checker), task)
        self._shards[node.name] = shard
        log.info("subscribing on cluster shard %s", node.name)
        return shard

    async def _stop_shard(self, shard: Shard) -> None:
        shard.subscriptions.stopping = True
        await cancel_all([shard.task])
        for client in shard.clients:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _stop_all(self) -> None:
        shards, self._shards = list(self._shards.values()), {}
        for shard in shards:
            await self._stop_shard(shard)
        self._placed.clear()

    async def _confirm_moved(self, moved: list[str]) -> None:
        """Channels moved to another shard: once it confirmed them, sockets sync what they missed."""
        self.moves += len(moved)
        log.warning(
            "the cluster's slot map moved %d channel(s) of this node (%s); subscribing on the new shard",
            len(moved),
            ", ".join(sorted(moved)[:5]),
        )
        if not await self.wait_confirmed(moved, MOVE_CONFIRM_SECONDS):
            self._trouble.set()
        self._on_gap()

    async def check_now(self) -> list[str]:
        """Compare the slot map and every shard's view with what sockets need; the differences."""
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._check_requests.append(future)
        self._check_now.set()
        return await future

    async def _check(self) -> list[str]:
        problems: list[str] = []
        for channel, name in self._placed.items():
            if self._owner_of(channel).name != name:
                problems.append(f"{channel} is held on {name}, which no longer owns its slot")
        for shard in list(self._shards.values()):
            if not shard.subscriptions.live:
                problems.append(f"shard {shard.name} is not subscribed")
                continue
            try:
                found = await shard.subscriptions.check_now()
            except SubscriberLost:
                found = ["its connection was lost during the check"]
            problems += [f"shard {shard.name}: {problem}" for problem in found]
        if problems:
            self._trouble.set()
        return problems
