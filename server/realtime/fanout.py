"""Redis → local sockets: one SUBSCRIBER connection per process (DESIGN §5, roles 1 and 2).

Durable events (published by the worker's outbox relay) and ephemeral socket-level events
(typing, navigation, presence, published by any gateway node) travel in the same
:class:`~server.outbox.envelope.Envelope` on the same channel, ``project_channel(project)``.
A node subscribes to the channel of a project only while one of its sockets needs it (reference
counted), decides the audience once per event and publishes the encoded packet to the local
socketify topics, which uWS delivers to every subscribed socket in C.

The connection itself, and every SUBSCRIBE and UNSUBSCRIBE on it, belongs to one task
(:mod:`server.realtime.subscriptions`); this module only says which projects sockets need. On a
Redis Cluster the channels are sharded (``SPUBLISH``/``SSUBSCRIBE``) and the node holds one such
connection per primary that owns a needed channel (:mod:`server.realtime.shards`).

Ephemeral events take the same road back to their own node, so every node (this one included)
delivers them the same way; there is no special local path to keep consistent.

Presence storms: ``presence.changed`` carries a list of ``changes``, and this node delivers at
most one per project every :data:`PRESENCE_WINDOW_SECONDS` (:class:`PresenceCoalescer`): the
first change goes out at once, the ones arriving within the window after it go out together
when it closes, in the order they happened.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from redis.asyncio import Redis

from server.outbox.envelope import Envelope, decode, encode, project_channel
from server.outbox.events import EventType
from server.realtime import protocol
from server.realtime.audience import audience, conversation_id_of, visitor_uid_in
from server.realtime.background import cancel_all
from server.realtime.shards import ShardedSubscriptions
from server.realtime.subscriptions import CHECK_SECONDS, Subscriptions
from server.redis_client import is_cluster, publish_all

log = logging.getLogger(__name__)

SUBSCRIBE_CONFIRM_SECONDS = 3.0
PRESENCE_WINDOW_SECONDS = 0.25
"""An agent socket gets at most one ``presence.changed`` per project per this many seconds."""

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
        self.subscriptions: Subscriptions | ShardedSubscriptions
        if is_cluster(subscriber):
            self.subscriptions = ShardedSubscriptions(
                subscriber,
                node_channel=node_channel,
                on_message=self._handle,
                on_gap=on_gap,
                check_seconds=check_seconds,
            )
        else:
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
        self.presence = PresenceCoalescer(self._deliver_presence)

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
        self.presence.close()
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
        await publish_all(self._redis, [(project_channel(envelope.project_id), encode(envelope))])

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
        if envelope.type == EventType.PRESENCE_CHANGED:
            self.presence.add(envelope)
            return
        visitor_uid = visitor_uid_in(envelope.data)
        if visitor_uid is None:
            conversation_id = conversation_id_of(envelope)
            if conversation_id is not None:
                visitor_uid = await self._visitor_of_conversation(conversation_id)
        for namespace, topic in audience(envelope, visitor_uid):
            self._publish_local(topic, protocol.encode_event_raw(namespace, envelope.type, encoded))
        self.delivered += 1
        self._after_publish()

    def _deliver_presence(self, envelope: Envelope) -> None:
        encoded = encode(envelope).decode()
        for namespace, topic in audience(envelope, None):
            self._publish_local(topic, protocol.encode_event_raw(namespace, envelope.type, encoded))
        self.delivered += 1
        self._after_publish()


class PresenceCoalescer:
    """At most one ``presence.changed`` per project per window, carrying every change meanwhile.

    Leading edge: a change to a project with no window open is delivered at once and opens a
    window; changes arriving while it is open wait in ``_pending``, in the order they happened,
    and go out as one event when it closes, which opens the next window. Every change is kept
    (a subject's last entry is its current status), so a client sees the same transitions as
    without coalescing, only fewer events.
    """

    def __init__(self, deliver: Callable[[Envelope], None], window: float = PRESENCE_WINDOW_SECONDS) -> None:
        self._deliver = deliver
        self.window = window
        self._pending: dict[int, list[Any]] = {}
        self._windows: dict[int, asyncio.TimerHandle] = {}
        """Projects whose window is open, and the timer that closes it."""

    def add(self, envelope: Envelope) -> None:
        changes = envelope.data.get("changes")
        if not isinstance(changes, list):
            return
        self._pending.setdefault(envelope.project_id, []).extend(changes)
        if envelope.project_id not in self._windows:
            self._flush(envelope.project_id)

    def _flush(self, project_id: int) -> None:
        self._windows.pop(project_id, None)
        pending = self._pending.pop(project_id, None)
        if not pending:
            return  # a quiet window: the next change goes out at once
        self._windows[project_id] = asyncio.get_running_loop().call_later(
            self.window, self._flush, project_id
        )
        envelope = Envelope(
            type=EventType.PRESENCE_CHANGED,
            project_id=project_id,
            at=time.time(),
            data={"changes": pending},
        )
        try:
            self._deliver(envelope)
        except Exception:
            log.exception("delivering presence of project %s failed", project_id)

    def close(self) -> None:
        for timer in self._windows.values():
            timer.cancel()
        self._windows.clear()
        self._pending.clear()
