"""Redis → local sockets: one SUBSCRIBER connection per process (DESIGN §5, roles 1 and 2).

Durable events (published by the worker's outbox relay) and ephemeral socket-level events
(typing, navigation, presence, published by any gateway node) travel in the same
:class:`~server.outbox.envelope.Envelope` on the same channel, ``project_channel(project)``.
A node subscribes to the channel of a project only while one of its sockets needs it (reference
counted), decides the audience once per event and publishes the encoded packet to the local
socketify topics, which uWS delivers to every subscribed socket in C.

Ephemeral events take the same road back to their own node, so every node (this one included)
delivers them the same way; there is no special local path to keep consistent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from redis.asyncio import Redis

from server.outbox.envelope import Envelope, decode, encode, project_channel
from server.realtime import protocol
from server.realtime.audience import audience, conversation_id_of, visitor_uid_in

log = logging.getLogger(__name__)

SUBSCRIBE_CONFIRM_SECONDS = 3.0

Publish = Callable[[str, str], None]
"""Publish a text packet to a local socketify topic."""
OwnerLookup = Callable[[int], Awaitable[str | None]]
"""conversation id -> its visitor's uid (PostgreSQL, cached)."""


class Fanout:
    def __init__(
        self,
        redis: Redis,
        subscriber: Redis,
        *,
        publish_local: Publish,
        after_publish: Callable[[], None],
        visitor_of_conversation: OwnerLookup,
        node_channel: str,
        on_gap: Callable[[], None] = lambda: None,
    ) -> None:
        self._redis = redis
        self._pubsub: Any = subscriber.pubsub()
        self._publish_local = publish_local
        self._after_publish = after_publish
        self._visitor_of_conversation = visitor_of_conversation
        self._node_channel = node_channel
        self._on_gap = on_gap
        self._node_subscribed = False
        self._counts: dict[int, int] = {}
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.delivered = 0

    async def start(self) -> None:
        # A standing subscription (this node's own channel) keeps the reader's connection busy
        # listening, so project channels can come and go without restarting it.
        await self._pubsub.subscribe(self._node_channel)
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="fanout-reader")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()

    async def acquire(self, project_ids: frozenset[int]) -> None:
        """Make sure this node receives these projects' events; waits for Redis to confirm."""
        new = []
        for project_id in project_ids:
            count = self._counts.get(project_id, 0)
            self._counts[project_id] = count + 1
            if count == 0:
                new.append(project_channel(project_id))
        if not new:
            return
        loop = asyncio.get_running_loop()
        waits = []
        for channel in new:
            future = self._confirmed.get(channel)
            if future is None or future.done():
                future = self._confirmed[channel] = loop.create_future()
            waits.append(future)
        await self._pubsub.subscribe(*new)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), SUBSCRIBE_CONFIRM_SECONDS)

    async def release(self, project_ids: frozenset[int]) -> None:
        gone = []
        for project_id in project_ids:
            count = self._counts.get(project_id, 0) - 1
            if count <= 0:
                self._counts.pop(project_id, None)
                gone.append(project_channel(project_id))
            else:
                self._counts[project_id] = count
        if gone:
            await self._pubsub.unsubscribe(*gone)

    def subscribed_projects(self) -> frozenset[int]:
        return frozenset(self._counts)

    async def publish(self, envelope: Envelope) -> None:
        """Send an ephemeral event to every node serving the project (this one included)."""
        await self._redis.publish(project_channel(envelope.project_id), encode(envelope))

    async def _read(self) -> None:
        while True:
            try:
                async for message in self._pubsub.listen():
                    await self._handle(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("fan-out reader failed; resubscribing")
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    channels = [self._node_channel, *(project_channel(p) for p in self._counts)]
                    await self._pubsub.subscribe(*channels)

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if kind == "subscribe":
            if channel == self._node_channel:
                # Confirmed again: the connection to Redis was lost and re-established, and
                # whatever was published meanwhile never reached us: sockets must catch up.
                if self._node_subscribed:
                    log.warning("event stream from Redis was interrupted; asking sockets to resync")
                    self._on_gap()
                self._node_subscribed = True
            future = self._confirmed.pop(str(channel), None)
            if future is not None and not future.done():
                future.set_result(None)
            return
        if kind != "message" or channel == self._node_channel:
            return
        raw = message["data"]
        try:
            envelope = decode(raw)
        except msgspec.DecodeError:
            log.warning("dropping an undecodable event on %s", channel)
            return
        if project_channel(envelope.project_id) != channel:
            log.warning("dropping an event of project %s published on %s", envelope.project_id, channel)
            return
        await self.deliver(envelope, raw if isinstance(raw, str) else raw.decode())

    async def deliver(self, envelope: Envelope, encoded: str) -> None:
        """Publish one event to the local topics its audience names."""
        visitor_uid = visitor_uid_in(envelope.data)
        if visitor_uid is None:
            conversation_id = conversation_id_of(envelope)
            if conversation_id is not None:
                visitor_uid = await self._visitor_of_conversation(conversation_id)
        for namespace, topic in audience(envelope, visitor_uid):
            self._publish_local(topic, protocol.encode_event_raw(namespace, envelope.type, encoded))
        self.delivered += 1
        self._after_publish()
