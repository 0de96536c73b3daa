"""Resolved callers, kept per web process and dropped the moment access data changes.

Resolving who calls (API key, owner, memberships) costs a PostgreSQL round trip that, on the
inbox list, was a fifth of the request. :class:`ActorCache` keeps the :class:`Actor` per
credential instead, under one rule: **a cached actor is never older than the access data**.

- Statement triggers on ``parley_user`` (``active``, ``global_role``), ``project``,
  ``project_member`` and ``api_key`` (revocation, scopes, expiry, project) send
  ``NOTIFY parley_access_changed`` when their transaction commits, whoever wrote the rows: the
  API, piccolo-admin or a psql session (migration ``tenancy_2026_11_25t01_20_00_000000``).
- :class:`AccessChangeListener` holds one dedicated connection per web process that LISTENs on
  that channel and empties the cache on every notification (``server/database_listen.py``; the
  realtime gateway listens to the same channel to drop sockets that lost their access).
- While that connection is down, the cache is **off**: every request is resolved from the
  database, so a notification lost with a connection can never keep a revoked key alive.
- A lookup that raced a notification is not stored (the generation check in :meth:`resolve`); an
  entry also expires after ``ttl`` seconds and never outlives its API key's ``expires_at``.

A change made through another process reaches this one's cache after the notification travels
(milliseconds). A change made in this process is forgotten at once: services that change access
call :func:`forget_cached_actors` right after committing.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime

from server.database_listen import ChannelListener
from server.tenancy.access import Actor

log = logging.getLogger(__name__)

CHANNEL = "parley_access_changed"
MAX_ENTRIES = 10_000

Loaded = tuple[Actor, datetime | None]
"""What a loader returns: the actor and when its credential expires (None: it does not)."""

_caches: weakref.WeakSet[ActorCache] = weakref.WeakSet()


def forget_cached_actors() -> None:
    """Empty every actor cache of this process: call after committing a change to access data."""
    for cache in list(_caches):
        cache.clear()


class ActorCache:
    """Credential key -> (actor, monotonic deadline). Only used while :attr:`live` is true."""

    def __init__(self, ttl: float, *, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.live = False
        """True while the change listener is connected; the cache is bypassed otherwise."""
        self.generation = 0
        """Bumped by every invalidation; :meth:`resolve` keeps no lookup that started before one."""
        self._entries: dict[str, tuple[Actor, float]] = {}
        _caches.add(self)

    @property
    def enabled(self) -> bool:
        return self.live and self.ttl > 0

    def get(self, key: str) -> Actor | None:
        if not self.enabled:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        actor, deadline = entry
        if time.monotonic() >= deadline:
            del self._entries[key]
            return None
        return actor

    async def resolve(self, key: str, load: Callable[[], Awaitable[Loaded | None]]) -> Actor | None:
        """The actor cached under ``key``, else what ``load`` returns (None: no such caller).

        A loaded actor is kept unless access changed while it was loading (the generation moved):
        the database may have answered from before the change.
        """
        actor = self.get(key)
        if actor is not None:
            return actor
        generation = self.generation
        loaded = await load()
        if loaded is None:
            return None
        actor, expires_at = loaded
        if self.enabled and generation == self.generation:
            self._keep(key, actor, expires_at)
        return actor

    def _keep(self, key: str, actor: Actor, expires_at: datetime | None) -> None:
        lifetime = self.ttl
        if expires_at is not None:  # never past the credential's own expiry
            lifetime = min(lifetime, expires_at.timestamp() - time.time())
        if lifetime <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (actor, time.monotonic() + lifetime)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class AccessChangeListener:
    """Keeps a LISTEN connection for :data:`CHANNEL`; the cache is live only while it is up."""

    def __init__(self, cache: ActorCache, *, retry_seconds: float = 1.0, probe_seconds: float = 10.0) -> None:
        self.cache = cache
        self._listener = ChannelListener(
            "access change listener",
            {CHANNEL: self._on_notify},
            on_connected=self._go_live,
            on_lost=self._go_offline,
            retry_seconds=retry_seconds,
            probe_seconds=probe_seconds,
        )

    async def start(self, *, wait: float = 5.0) -> None:
        """Start listening; wait (briefly) for the first connection so the cache starts warm-able."""
        if self.cache.ttl <= 0:
            return
        await self._listener.start(wait=wait)

    async def stop(self) -> None:
        await self._listener.stop()
        self._go_offline()

    def _on_notify(self, _payload: str) -> None:
        self.cache.clear()

    async def _go_live(self) -> None:
        self.cache.clear()  # whatever changed while nobody listened
        self.cache.live = True

    def _go_offline(self) -> None:
        self.cache.live = False
        self.cache.clear()
