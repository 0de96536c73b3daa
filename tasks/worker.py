"""SAQ worker settings: ``saq tasks.worker.settings``.

The worker consumes ``live-chat-events-queue``. A heartbeat cron job writes the time of its
last run to Redis every few seconds, so operators (and tests) can see the worker is alive.
"""

from __future__ import annotations

import sys
import time
from contextlib import AsyncExitStack
from typing import Any

from redis.asyncio import Redis
from saq import CronJob
from saq.types import Context, SettingsDict

from server.database import connection_pool
from server.redis_client import Keys, make_redis
from server.settings import Settings, SettingsError, configure_logging, get_settings

HEARTBEAT_TTL_SECONDS = 60


class WorkerContext(Context, total=False):
    """What ``startup`` puts in SAQ's context; every job receives a copy of it."""

    redis: Redis
    resources: AsyncExitStack


def _load_settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as error:
        # saq imports this module; a stack trace would bury the one line that matters.
        print(f"parley worker: {error}", file=sys.stderr)
        raise SystemExit(2) from None


async def heartbeat(ctx: WorkerContext) -> float:
    """Record that the worker ran; returns the timestamp written."""
    now = time.time()
    await ctx["redis"].set(Keys.worker_heartbeat(), repr(now), ex=HEARTBEAT_TTL_SECONDS)
    return now


async def startup(ctx: WorkerContext) -> None:
    settings = get_settings()
    configure_logging(settings)
    resources = AsyncExitStack()
    await resources.enter_async_context(connection_pool(settings.database.pool_size))
    ctx["redis"] = make_redis(settings.redis)
    resources.push_async_callback(ctx["redis"].aclose)
    ctx["resources"] = resources


async def shutdown(ctx: WorkerContext) -> None:
    if "resources" in ctx:
        await ctx["resources"].aclose()


def build_settings(settings: Settings) -> SettingsDict[WorkerContext]:
    from server.queue import make_queue

    concurrency = 10
    return {
        "queue": make_queue(settings.redis, concurrency=concurrency),
        "functions": [heartbeat],
        "cron_jobs": [CronJob(heartbeat, cron="* * * * * */5", unique=True)],
        "concurrency": concurrency,
        "startup": startup,
        "shutdown": shutdown,
    }


settings: Any = build_settings(_load_settings())
