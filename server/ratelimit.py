"""Fixed-window rate limits in Redis, keyed by scope and subject (an IP, an e-mail, a visitor...).

One INCR + EXPIRE per check, in a single round trip. Fixed windows are coarse at the edges but
cheap and predictable; callers pick a window short enough that the edge effect does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from server.errors import RateLimited
from server.redis_client import Keys


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str
    limit: int
    window_seconds: int


async def hit(redis: Redis, rule: Limit, subject: str) -> int | None:
    """Count one attempt; return seconds to wait when over the limit, else None."""
    key = Keys.rate_limit(rule.scope, subject)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, rule.window_seconds, nx=True)
        pipe.ttl(key)
        count, _, ttl = await pipe.execute()
    if int(count) > rule.limit:
        return max(int(ttl), 1)
    return None


async def enforce(redis: Redis, rule: Limit, subject: str, message: str) -> None:
    """Raise :class:`RateLimited` (429 with Retry-After) when ``subject`` is over ``rule``."""
    retry_after = await hit(redis, rule, subject)
    if retry_after is not None:
        raise RateLimited(message, retry_after=retry_after)


async def reset(redis: Redis, rule: Limit, subject: str) -> None:
    await redis.delete(Keys.rate_limit(rule.scope, subject))
