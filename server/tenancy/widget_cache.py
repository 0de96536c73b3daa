"""The widget's cached project lookup is dropped whenever its project row changes.

``server/chat/visitors.py`` keeps what the widget API needs of a project in Redis, by public key,
for up to a minute. Rules, so that a rotated identity secret, a new origin or a deleted project
takes effect when it commits, whoever changed it:

- a row trigger on ``project`` (migration ``tenancy_2026_12_01t23_40_00_000000``) sends
  ``NOTIFY parley_project_changed, '<old public key>'`` on every UPDATE and DELETE (``*`` on
  TRUNCATE), so no setting, present or future, can forget to clear the cache;
- :class:`WidgetCacheListener`, one per web process, LISTENs on that channel and deletes the
  named entry (every entry for ``*``); when its connection comes back after a loss it deletes
  every entry, since notifications sent meanwhile are lost;
- the services that change a project also call :func:`forget_widget_project` right after their
  commit, so the next request of the same caller never races the notification;
- a deleted project also leaves a tombstone (:func:`mark_project_deleted`) for as long as its
  tokens may live, which the widget's send route checks: a deleted project's visitor gets 404.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.database_listen import ChannelListener
from server.redis_client import Keys

log = logging.getLogger(__name__)

CHANNEL = "parley_project_changed"
ALL = "*"
TOMBSTONE_SECONDS = 20 * 60
"""Longer than any socket or visitor token lives (15 minutes): after that nothing can name the project."""


async def mark_project_deleted(redis: Redis, project_id: int) -> None:
    """Remember that the project is gone, so its visitors' still-valid tokens can send nothing."""
    await redis.set(Keys.deleted_project(project_id), 1, ex=TOMBSTONE_SECONDS)


async def project_deleted(redis: Redis, project_id: int) -> bool:
    """Whether the project was deleted recently enough for a token of it to still be valid."""
    return bool(await redis.exists(Keys.deleted_project(project_id)))


async def forget_widget_project(redis: Redis, public_key: str) -> None:
    """Drop the cached widget lookup of ``public_key`` (``*``: of every project)."""
    if public_key != ALL:
        await redis.delete(Keys.project_by_public_key(public_key))
        return
    batch: list[bytes | str] = []
    async for key in redis.scan_iter(match=Keys.project_by_public_key("*"), count=500):
        batch.append(key)
        if len(batch) >= 500:
            await redis.unlink(*batch)
            batch = []
    if batch:
        await redis.unlink(*batch)


class WidgetCacheListener:
    """LISTENs on :data:`CHANNEL` and forgets the cached projects it names."""

    def __init__(self, redis: Redis, *, retry_seconds: float = 1.0, probe_seconds: float = 10.0) -> None:
        self.redis = redis
        self._pending: set[asyncio.Task[None]] = set()
        self._listener = ChannelListener(
            "widget cache listener",
            {CHANNEL: self._on_notify},
            # Whatever changed while nobody listened.
            on_connected=lambda: self._forget(ALL),
            retry_seconds=retry_seconds,
            probe_seconds=probe_seconds,
        )

    async def start(self, *, wait: float = 5.0) -> None:
        await self._listener.start(wait=wait)

    async def stop(self) -> None:
        await self._listener.stop()
        for task in list(self._pending):
            task.cancel()

    def _on_notify(self, payload: str) -> None:
        task = asyncio.create_task(self._forget(payload))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _forget(self, payload: str) -> None:
        public_key, _, deleted_id = payload.partition(" deleted ")
        try:
            if deleted_id.isdigit():
                await mark_project_deleted(self.redis, int(deleted_id))
            await forget_widget_project(self.redis, public_key)
        except RedisError as error:  # the entry expires on its own (PROJECT_CACHE_TTL_SECONDS)
            log.warning("could not drop the widget cache of %s: %s", payload, error)
