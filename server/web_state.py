"""Resources of the web process (API and console alike): made in the lifespan, kept on ``app.state``."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from redis.asyncio import Redis
from redis.exceptions import RedisError
from saq.queue.base import Queue

from server.backing_outages import POSTGRESQL, REDIS, BackingOutages
from server.chat.mailbox import ReplicaAck
from server.chat.sending import MessageSender
from server.database import connection_pool, engine
from server.redis_client import make_redis
from server.settings import Settings
from server.tenancy.actor_cache import AccessChangeListener, ActorCache
from server.tenancy.widget_cache import WidgetCacheListener

log = logging.getLogger(__name__)


def settings_of(app: Litestar) -> Settings:
    settings: Settings = app.state.settings
    return settings


def queue_of(app: Litestar) -> Queue:
    queue: Queue = app.state.queue
    return queue


def screenshot_queue_of(app: Litestar) -> Queue:
    """The render jobs' own queue (``screenshots-queue``), apart from the events queue."""
    queue: Queue = app.state.screenshot_queue
    return queue


def sender_of(app: Litestar) -> MessageSender:
    sender: MessageSender = app.state.sender
    return sender


def actors_of(app: Litestar) -> ActorCache:
    actors: ActorCache = app.state.actors
    return actors


def redis_of(app: Litestar) -> Redis:
    redis: Redis = app.state.redis
    return redis


def outages_of(app: Litestar) -> BackingOutages | None:
    """The process's outage log (None before the lifespan made it)."""
    outages: BackingOutages | None = getattr(app.state, "outages", None)
    return outages


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    settings = settings_of(app)
    async with connection_pool(settings.database.pool_size):
        app.state.redis = make_redis(settings.redis)
        redis = app.state.redis
        app.state.outages = BackingOutages(
            {REDIS: redis.ping, POSTGRESQL: lambda: engine().run_ddl("SELECT 1")}
        )
        queue = app.state.queue
        app.state.sender = MessageSender(
            queue, app.state.redis, replica_ack=ReplicaAck.from_settings(settings.redis)
        )
        app.state.actors = ActorCache(settings.security.actor_cache_seconds)
        listener = AccessChangeListener(app.state.actors)
        await listener.start()
        widget_cache = WidgetCacheListener(app.state.redis)
        await widget_cache.start()
        # Everything made so far lives as long as the process: move it out of the collector's
        # sight. Without this a full collection walks the app, piccolo-admin and the OpenAPI
        # schema: ~70 ms pauses, measured as the inbox list's p99.
        gc.freeze()
        try:
            yield
        finally:
            await app.state.outages.aclose()
            await widget_cache.stop()
            await listener.stop()
            await app.state.sender.aclose()
            for each in (queue, app.state.screenshot_queue):
                try:
                    await each.disconnect()
                except RedisError as error:  # shutting down with Redis gone must still finish
                    log.warning("queue disconnect failed: %s", error)
            await app.state.redis.aclose()
