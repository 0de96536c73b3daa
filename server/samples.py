"""What the System page draws: a sample of the pipeline every few seconds, kept for an hour.

The worker's heartbeat job (every 5 s, one run per tick for all workers: a unique cron job) calls
:func:`record_sample`: the queue's depth (waiting jobs), the running jobs, and the highest message
id, whose growth between two samples is the stored messages' throughput (an index-only read of
the primary key, not a count). Samples live in one Redis hash by time bucket (``HSETNX``: a
second worker writing the same bucket changes nothing), and old buckets are dropped as new ones
come. :func:`recent_samples` reads them back in time order; :func:`throughput` turns them into
messages per second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import msgspec
from redis.asyncio import Redis

from server.database import fetch
from server.redis_client import Keys

BUCKET_SECONDS = 5
KEEP_SECONDS = 3600


class Sample(msgspec.Struct, frozen=True, array_like=True):
    at: float
    """Unix time of the sample."""
    queued: int
    """Jobs waiting on the queue."""
    active: int
    """Jobs running."""
    last_message_id: int
    """The highest message id stored so far."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Sample)


async def record_sample(redis: Redis, queue: Any, *, now: float | None = None) -> Sample:
    """Take one sample and keep it (once per bucket); drop samples older than an hour."""
    at = time.time() if now is None else now
    rows = await fetch("SELECT COALESCE(max(id), 0) AS last FROM message")
    sample = Sample(
        at=at,
        queued=int(await queue.count("queued")),
        active=int(await queue.count("active")),
        last_message_id=int(rows[0]["last"]),
    )
    bucket = int(at // BUCKET_SECONDS)
    await redis.hsetnx(Keys.SYSTEM_SAMPLES, str(bucket), _encoder.encode(sample))
    oldest = bucket - KEEP_SECONDS // BUCKET_SECONDS
    stale = [field for field in await redis.hkeys(Keys.SYSTEM_SAMPLES) if int(field) < oldest]
    if stale:
        await redis.hdel(Keys.SYSTEM_SAMPLES, *stale)
    return sample


async def recent_samples(
    redis: Redis, *, within: float = KEEP_SECONDS, now: float | None = None
) -> list[Sample]:
    """The samples of the last ``within`` seconds, oldest first."""
    since = (time.time() if now is None else now) - within
    samples = [_decoder.decode(raw) for raw in (await redis.hgetall(Keys.SYSTEM_SAMPLES)).values()]
    return sorted((s for s in samples if s.at >= since), key=lambda s: s.at)


@dataclass(frozen=True, slots=True)
class Rate:
    at: float
    per_second: float


def throughput(samples: list[Sample]) -> list[Rate]:
    """Messages stored per second between consecutive samples (none for a gap of one sample)."""
    rates = []
    for before, after in pairwise(samples):
        seconds = after.at - before.at
        if seconds > 0:
            stored = max(0, after.last_message_id - before.last_message_id)
            rates.append(Rate(at=after.at, per_second=stored / seconds))
    return rates
