"""The one owner of this node's SUBSCRIBER connection to Redis (DESIGN §5, roles 1 and 2).

Issue #9: restarted gateways sometimes never delivered a live event again. Sockets were accepted
before the fan-out's start-up subscribe had finished, a namespace join subscribed at the same
moment, and redis-py's ``PubSub.connect()`` awaits between "is there a connection yet?" and
keeping the one it opened: two concurrent first calls opened two SUBSCRIBER connections, the
reader read one, and the other held the project's channel. The bookkeeping said "subscribed", so
nothing ever retried (Redis showed two pub/sub connections of one channel each for the node).

So here one task, :meth:`Subscriptions.run`, owns the connection: it alone connects, sends every
SUBSCRIBE and UNSUBSCRIBE, and reconnects. Sockets only change reference counts
(:meth:`acquire`/:meth:`release`, synchronous) and may wait for Redis's confirmation; the task
sends the difference between what sockets need and what it asked Redis for. A reader task, started
and cancelled by the owner with each connection, only reads. After every (re)connect and every
``check_seconds`` the owner compares Redis's own view with what sockets need (:meth:`_check`) and
repairs and logs any difference. :attr:`live` is set while the connection is subscribed and read:
the gateway accepts sockets only then.

The connection is a bare redis-py ``Connection`` rather than a ``PubSub``: ``PubSub`` reconnects and
resubscribes by itself inside whichever task happens to call it, which is the very thing one owner
must not share.

On a Redis Cluster the same class owns one shard's connection with ``sharded=True``
(``SSUBSCRIBE``/``SUNSUBSCRIBE``, ``smessage``, ``PUBSUB SHARDNUMSUB``, one command per slot);
:mod:`server.realtime.shards` decides which channels each shard's owner holds and follows the
cluster's slot map.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ResponseError

from server.outage import Outage

log = logging.getLogger(__name__)

CONFIRM_SECONDS = 5.0
"""How long Redis may take to answer on the subscriber connection before it counts as dead."""
CHECK_SECONDS = 30.0
RETRY_SECONDS = (0.05, 0.2, 0.5, 1.0, 2.0)
NUMSUB_BATCH = 500

OnMessage = Callable[[str, bytes], Awaitable[None]]
"""(channel, data) of one published message."""


class SubscriberLost(Exception):
    """The subscriber connection stopped answering or Redis's view cannot be repaired in place."""


async def _push_as_is(response: Any) -> Any:
    # redis-py's default RESP3 push handler formats every message into a debug string (str() of
    # the whole payload) whatever the log level: per-message work we do not want.
    return response


def _is_pong(response: Any) -> bool:
    """RESP3 answers PING on a subscribed connection with PONG, RESP2 with ["pong", ""]."""
    return response == b"PONG" or (isinstance(response, list) and bool(response) and response[0] == b"pong")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Subscriptions:
    def __init__(
        self,
        subscriber: Redis,
        checker: Redis,
        *,
        node_channel: str | None,
        on_message: OnMessage,
        on_gap: Callable[[], None],
        check_seconds: float = CHECK_SECONDS,
        sharded: bool = False,
        on_trouble: Callable[[], None] | None = None,
        name: str = "the realtime node's event subscription",
    ) -> None:
        self._pool: Any = subscriber.connection_pool
        self._checker = checker
        self._node_channel = node_channel
        """Subscribed for as long as the connection lives (None: a cluster shard without it)."""
        self.sharded = sharded
        self._subscribe, self._unsubscribe = (
            ("SSUBSCRIBE", "SUNSUBSCRIBE") if sharded else ("SUBSCRIBE", "UNSUBSCRIBE")
        )
        self._kinds = (
            (b"smessage", b"ssubscribe", b"sunsubscribe")
            if sharded
            else (b"message", b"subscribe", b"unsubscribe")
        )
        self._on_trouble = on_trouble or (lambda: None)
        """Told when the shard may no longer own a channel (a MOVED reply, a SUNSUBSCRIBE from Redis)."""
        self._on_message = on_message
        self._on_gap = on_gap
        self.check_seconds = check_seconds
        self._needed: dict[str, int] = {}
        """channel -> how many sessions of this node need it."""
        self._asked: set[str] = set()
        """Channels the owner asked Redis for on the current connection (SUBSCRIBE sent, no UNSUBSCRIBE)."""
        self._confirmed: set[str] = set()
        """Channels Redis confirmed on the current connection."""
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._pongs: list[asyncio.Future[None]] = []
        self._changed = asyncio.Event()
        self._check_now = asyncio.Event()
        self._check_requests: list[asyncio.Future[list[str]]] = []
        self._connection: Any = None
        self._client_id: int | None = None
        self._outage = Outage(log, f"Redis ({name})")
        self._live = asyncio.Event()
        self.connects = 0
        self.repairs = 0
        self.stopping = False

    # -- what sockets need (synchronous; the owner task does the talking) --------------------

    def acquire(self, channels: Iterable[str]) -> list[str]:
        """Count one more user of each channel; returns those not yet confirmed by Redis."""
        waiting = []
        for channel in channels:
            self._needed[channel] = self._needed.get(channel, 0) + 1
            if channel not in self._confirmed or channel not in self._asked:
                waiting.append(channel)
        if waiting:
            self._changed.set()
        return waiting

    def release(self, channels: Iterable[str]) -> None:
        for channel in channels:
            count = self._needed.get(channel, 0) - 1
            if count <= 0:
                self._needed.pop(channel, None)
                self._changed.set()
            else:
                self._needed[channel] = count

    def is_confirmed(self, channel: str) -> bool:
        return channel in self._confirmed and channel in self._asked

    async def wait_confirmed(self, channels: list[str], within: float) -> bool:
        """Wait until Redis confirmed these channels on the live connection; False on timeout."""
        loop = asyncio.get_running_loop()
        futures = []
        for channel in channels:
            if channel in self._confirmed and channel in self._asked:
                continue
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(channel, []).append(future)
            futures.append(future)
        if not futures:
            return True
        try:
            await asyncio.wait_for(asyncio.gather(*futures), within)
            return True
        except TimeoutError:
            return False

    @property
    def live(self) -> bool:
        """Subscribed to this node's channel, confirmed, and the reader reading."""
        return self._live.is_set()

    async def became_live(self) -> None:
        await self._live.wait()

    def needed(self) -> frozenset[str]:
        return frozenset(self._needed)

    # -- the owner task -------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, subscribe, keep Redis in step with what sockets need; reconnect on failure."""
        attempt = 0
        while not self.stopping:
            reader: asyncio.Task[None] | None = None
            try:
                connection = await self._connect()
                reader = asyncio.get_running_loop().create_task(self._read(connection), name="fanout-reader")
                await self._send_difference(connection)
                if self._node_channel is not None:
                    await self._until_confirmed(self._node_channel, reader)
                else:
                    await self._round_trip(connection, reader)
                self._live.set()
                self.connects += 1
                attempt = 0
                self._outage.recovered()
                if self.connects > 1:
                    # Whatever was published while we were away never reached us.
                    log.warning("subscribed to Redis again; asking every socket to sync")
                    self._on_gap()
                await self._check(connection, reader)
                await self._serve(connection, reader)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._outage.failed(error)
                self._on_trouble()
            finally:
                self._live.clear()
                await self._drop(reader)
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1

    async def _connect(self) -> Any:
        connection = self._pool.make_connection()
        await connection.connect()
        connection._parser.set_pubsub_push_handler(_push_as_is)
        try:
            await connection.send_command("CLIENT", "ID", check_health=False)
            self._client_id = int(await connection.read_response(timeout=CONFIRM_SECONDS))
        except Exception:  # CLIENT may be forbidden on managed Redis: the check then relies on NUMSUB
            self._client_id = None
        self._connection = connection
        self._asked.clear()
        self._confirmed.clear()
        return connection

    async def _drop(self, reader: asyncio.Task[None] | None) -> None:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)
        self._asked.clear()
        self._confirmed.clear()
        waiting: list[asyncio.Future[Any]] = [*self._pongs, *self._check_requests]
        for future in waiting:
            if not future.done():
                future.set_exception(SubscriberLost("the subscriber connection was dropped"))
        self._pongs.clear()
        self._check_requests.clear()

    async def _serve(self, connection: Any, reader: asyncio.Task[None]) -> None:
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.check_seconds
        while True:
            changed = loop.create_task(self._changed.wait())
            check_now = loop.create_task(self._check_now.wait())
            try:
                await asyncio.wait(
                    [changed, check_now, reader],
                    timeout=max(0.0, next_check - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                changed.cancel()
                check_now.cancel()
            if reader.done():
                reader.result()  # raises what ended it
                raise SubscriberLost("the reader stopped")
            self._changed.clear()
            await self._send_difference(connection)
            if self._check_now.is_set() or loop.time() >= next_check:
                self._check_now.clear()
                requests, self._check_requests = self._check_requests, []
                problems = await self._check(connection, reader)
                for future in requests:
                    if not future.done():
                        future.set_result(problems)
                next_check = loop.time() + self.check_seconds

    def _wanted(self) -> set[str]:
        wanted = set(self._needed)
        if self._node_channel is not None:
            wanted.add(self._node_channel)
        return wanted

    async def _send_difference(self, connection: Any) -> None:
        wanted = self._wanted()
        more = sorted(wanted - self._asked)
        fewer = sorted(self._asked - wanted)
        commands: list[tuple[str, ...]] = []
        if more:
            self._asked.update(more)
            commands += self._commands(self._subscribe, more)
        if fewer:
            self._asked.difference_update(fewer)
            commands += self._commands(self._unsubscribe, fewer)
        if commands:
            await connection.send_packed_command(connection.pack_commands(commands), check_health=False)

    def _commands(self, command: str, channels: list[str]) -> list[tuple[str, ...]]:
        """One command for all channels; on a cluster one per slot (a command may not cross slots)."""
        if not self.sharded:
            return [(command, *channels)]
        by_slot: dict[int, list[str]] = {}
        for channel in channels:
            by_slot.setdefault(key_slot(channel.encode()), []).append(channel)
        return [(command, *group) for group in by_slot.values()]

    async def _until_confirmed(self, channel: str, reader: asyncio.Task[None]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, []).append(future)
        done, _ = await asyncio.wait(
            [future, reader], timeout=CONFIRM_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if future not in done:
            future.cancel()
            if reader in done:
                reader.result()
            raise SubscriberLost(f"Redis did not confirm {channel} within {CONFIRM_SECONDS:g}s")

    async def _round_trip(self, connection: Any, reader: asyncio.Task[None]) -> None:
        """PING on the subscriber connection: when PONG is read, Redis has applied every command sent
        before it, and the reader is proven to be reading."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs.append(future)
        await connection.send_command("PING", check_health=False)
        done, _ = await asyncio.wait(
            [future, reader], timeout=CONFIRM_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if future not in done:
            if reader in done:
                reader.result()
            raise SubscriberLost(f"no PONG on the subscriber connection within {CONFIRM_SECONDS:g}s")

    async def check_now(self) -> list[str]:
        """Have the owner compare Redis's view with the sockets' needs now; the differences it found."""
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._check_requests.append(future)
        self._check_now.set()
        return await future

    async def _check(self, connection: Any, reader: asyncio.Task[None]) -> list[str]:
        """Compare Redis's view of this node's subscriptions with what its sockets need; repair.

        Redis's view: the subscribe confirmations read on our connection, ``PUBSUB NUMSUB`` of this
        node's own channel (exactly one connection: ours) and of every needed channel (at least
        one: ours), and ``CLIENT LIST ID`` of our connection (how many channels it holds). Returns
        the differences found, each logged as a warning.
        """
        await self._send_difference(connection)
        asked = frozenset(self._asked)
        await self._round_trip(connection, reader)  # Redis has applied all of it; the reader read it all
        problems = []
        unconfirmed = sorted(asked - self._confirmed)
        if unconfirmed:
            problems.append(f"asked for but not confirmed: {', '.join(unconfirmed[:10])}")
        unasked = sorted(self._confirmed - asked)
        if unasked:
            problems.append(f"confirmed but not needed: {', '.join(unasked[:10])}")
        counts = await self._numsub(sorted(asked))
        missing = sorted(channel for channel in asked if counts.get(channel, 0) == 0)
        if missing:
            problems.append(f"Redis has no subscriber for {', '.join(missing[:10])}")
        held = await self._channels_held()
        if held is not None and held != len(asked):
            problems.append(f"Redis says our connection holds {held} channels, sockets need {len(asked)}")
        node_channel = self._node_channel
        node_count = counts.get(node_channel, 0) if node_channel is not None else 0
        others = node_count - 1 if node_channel in asked and node_channel not in missing else 0
        if problems:
            self.repairs += 1
            for problem in problems:
                log.warning("event subscriptions out of step with Redis (%s); subscribing again", problem)
            # Ask again for exactly what is needed (dropping whatever else the connection holds);
            # events missed meanwhile are caught up by sync.
            await connection.send_command(self._unsubscribe, check_health=False)
            self._asked.clear()
            await self._send_difference(connection)
            await self._round_trip(connection, reader)
            self._on_gap()
        if others > 0:
            # Not ours to close (a connection of this process would be a bug; another process
            # with the same REALTIME_NODE_ID is a configuration error): say so.
            problems.append(f"{others} other connection(s) subscribed to this node's channel")
            log.error(
                "%d other Redis connection(s) subscribe to this node's channel %s", others, self._node_channel
            )
        return problems

    async def _numsub(self, channels: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for start in range(0, len(channels), NUMSUB_BATCH):
            batch = channels[start : start + NUMSUB_BATCH]
            if self.sharded:
                pairs = await self._checker.pubsub_shardnumsub(*batch)
            else:
                pairs = await self._checker.pubsub_numsub(*batch)
            counts.update((_text(channel), int(count)) for channel, count in pairs)
        return counts

    async def _channels_held(self) -> int | None:
        """Redis's count of channels our subscriber connection holds (``CLIENT LIST ID``)."""
        if self._client_id is None:
            return None
        try:
            clients = await self._checker.client_list(client_id=[self._client_id])
        except Exception:
            return None
        if not clients:
            return 0
        field = "ssub" if self.sharded else "sub"
        return int(clients[0][field]) if field in clients[0] else None

    # -- the reader (reads only) -------------------------------------------------------------------

    async def _read(self, connection: Any) -> None:
        node_channel = self._node_channel
        on_message = self._on_message
        message, subscribed, unsubscribed = self._kinds
        while True:
            try:
                response = await connection.read_response(timeout=math.inf, push_request=True)
            except ResponseError as error:
                if not self.sharded:
                    raise
                # MOVED (or CROSSSLOT) to an SSUBSCRIBE: the slot map changed under us. The
                # channel stays unconfirmed; the shards' owner learns the new map and moves it.
                log.warning("a shard refused a subscription (%s); following the cluster's slot map", error)
                self._on_trouble()
                continue
            if isinstance(response, list) and len(response) == 3:
                kind = response[0]
                if kind == message:
                    channel = _text(response[1])
                    if channel != node_channel:
                        await on_message(channel, response[2])
                    continue
                if kind == subscribed:
                    self._subscribed(_text(response[1]))
                    continue
                if kind == unsubscribed:
                    channel = _text(response[1])
                    self._confirmed.discard(channel)
                    if self.sharded and channel in self._asked:
                        # Not asked for: Redis drops shard channels whose slot moved elsewhere.
                        self._on_trouble()
                    continue
            if self._pongs and _is_pong(response):
                future = self._pongs.pop(0)
                if not future.done():
                    future.set_result(None)

    def _subscribed(self, channel: str) -> None:
        self._confirmed.add(channel)
        for future in self._waiters.pop(channel, ()):
            if not future.done():
                future.set_result(None)
