"""The SAQ queue shared by the API node (enqueue) and the worker node (consume)."""

from __future__ import annotations

from saq.queue.redis import RedisQueue

from server.redis_client import make_redis
from server.settings import RedisSettings

EVENTS_QUEUE = "live-chat-events-queue"


def make_queue(settings: RedisSettings, *, name: str = EVENTS_QUEUE, concurrency: int = 10) -> RedisQueue:
    """A SAQ queue on our own blocking pool.

    ``Queue.from_url`` would use redis-py's default pool, which raises when exhausted (jobs then
    stick as active until the sweeper frees them) and does not accept ``unix://`` URLs. The
    pool is sized for the worker's concurrency plus SAQ's own connections (DESIGN §13).
    """
    return RedisQueue(make_redis(settings, max_connections=concurrency * 2 + 10), name=name)
