"""Redis → local sockets: one SUBSCRIBER connection per process (DESIGN §5, roles 1 and 2).

Durable events (published by the worker's outbox relay) and ephemeral socket-level events
(typing, navigation, presence, published by any gateway node) travel in the same
:class:`~server.outbox.envelope.Envelope` on the same channel, ``project_channel(project)``.
A node subscribes to the channel of a project only while one of its sockets needs it (reference
counted), decides the audience once per event and publishes the encoded packet to the local
socketify topics, which uWS delivers to every subscribed socket in C.

The connection itself, and every SUBSCRIBE and UNSUBSCRIBE on it, belongs to one task
(:mod:`server.realtime.subscriptions`); this module only says which projects sockets need.

Ephemeral events take the same road back to their own node, so every node (this one included)
delivers them the same way; there is no special local path to keep consistent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgspec
from redis.asyncio import Redis

from server.outbox.envelope import Envelope, decode, encode, project_channel
from server.realtime import protocol
from server.realtime.audience import audience, conversation_id_of, visitor_uid_in
from server.realtime.background import cancel_all
from server.realtime.subscriptions import CHECK_SECONDS, Subscriptions

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
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self._redis = redis
        self._publish_local = publish_local
        self._after_publish = after_publish
        self._visitor_of_conversation = visitor_of_conversation
        self.subscriptions = Subscriptions(
            subscriber,
            redis,
            node_channel=node_channel,
            on_message=self._handle,
            on_gap=on_gap,
            check_seconds=check_seconds,
        )
        self._owner: asyncio.Task[None] | None = None
        self.delivered = 0

    @property
    def live(self) -> bool:
        """Subscribed and reading: only then may the gateway accept sockets."""
        return self.subscriptions.live

    async def start(self) -> None:
        """Start the subscription owner and wait until it is subscribed and reading."""
        self._owner = asyncio.get_running_loop().create_task(
            self.subscriptions.run(), name="fanout-subscriptions"
        )
        await self.subscriptions.became_live()

    async def stop(self) -> None:
        self.subscriptions.stopping = True
        if self._owner is not None:
            await cancel_all([self._owner])

    async def acquire(self, project_ids: frozenset[int]) -> None:
        """Make sure this node receives these projects' events; waits for Redis to confirm."""
        waiting = self.subscriptions.acquire([project_channel(p) for p in project_ids])
        if waiting and not await self.subscriptions.wait_confirmed(waiting, SUBSCRIBE_CONFIRM_SECONDS):
            log.warning(
                "Redis did not confirm %d channel(s) within %gs", len(waiting), SUBSCRIBE_CONFIRM_SECONDS
            )

    async def release(self, project_ids: frozenset[int]) -> None:
        self.subscriptions.release([project_channel(p) for p in project_ids])

    async def publish(self, envelope: Envelope) -> None:
        """Send an ephemeral event to every node serving the project (this one included)."""
        await self._redis.publish(project_channel(envelope.project_id), encode(envelope))

    async def _handle(self, channel: str, raw: bytes) -> None:
        try:
            envelope = decode(raw)
        except msgspec.DecodeError:
            log.warning("dropping an undecodable event on %s", channel)
            return
        if project_channel(envelope.project_id) != channel:
            log.warning("dropping an event of project %s published on %s", envelope.project_id, channel)
            return
        await self.deliver(envelope, raw.decode())

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
