"""The presence heartbeat (one script per project and kind, one ZADD per bucket) refreshes every key.

In process, on the run's real Redis (a cluster under ``PARLEY_TEST_REDIS=cluster``): the node's
entries are given as the gateway gives its open sockets.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from server.realtime.presence import STATUS_TTL_SECONDS, Entry, Presence, Subject
from server.redis_client import Keys, presence_bucket, presence_buckets

TTL_MS = 30_000


async def _nothing(envelope: Any) -> None:
    return None


async def test_a_heartbeat_refreshes_sockets_sweep_sets_project_sets_and_statuses(redis: Redis) -> None:
    visitor_a = Subject(7001, "visitor", "v_beat_a")
    visitor_b = Subject(7002, "visitor", "v_beat_b")
    agent = Subject(7001, "agent", "42")
    # Visitor A has two tabs; project 7001 has a visitor and an agent (two kinds, two sets).
    entries: list[Entry] = [(visitor_a, 1), (visitor_a, 2), (visitor_b, 3), (agent, 4)]
    presence = Presence(redis, node_id="beat", grace_ms=1000, ttl_ms=TTL_MS, publish=_nothing)
    presence.entries = lambda: iter(entries)
    for subject, _ in entries:
        await redis.set(subject.status_key, "online", ex=5)
    before = time.time()
    await presence.heartbeat()
    after = time.time()

    def fresh(score: float | None, scale: float = 1000) -> bool:
        ttl = TTL_MS / 1000  # expiry is written in whole milliseconds: allow one
        return score is not None and before + ttl - 0.002 <= score / scale <= after + ttl + 0.002

    buckets = presence_buckets(redis)
    for subject, number in entries:
        assert fresh(await redis.zscore(subject.sockets_key, f"beat:{number}"))
        bucket = Keys.all_sockets(presence_bucket(subject.project_id, buckets))
        assert fresh(await redis.zscore(bucket, f"{subject.encode()}|beat:{number}"))
        assert fresh(await redis.zscore(subject.project_set, subject.id), scale=1)
        assert TTL_MS < await redis.pttl(subject.sockets_key) <= 2 * TTL_MS
        assert STATUS_TTL_SECONDS - 60 < await redis.ttl(subject.status_key) <= STATUS_TTL_SECONDS
    assert await redis.zcard(visitor_a.sockets_key) == 2
    assert await redis.zscore(Keys.agent_presence(7001), "42") is not None
    assert await redis.zscore(Keys.visitor_presence(7001), "42") is None
    # The project set only moves forward (GT): an older beat does not lower it.
    newer = await redis.zscore(visitor_b.project_set, visitor_b.id)
    stale = Presence(redis, node_id="beat", grace_ms=1000, ttl_ms=1000, publish=_nothing)
    stale.entries = lambda: iter(entries)
    await stale.heartbeat()
    assert await redis.zscore(visitor_b.project_set, visitor_b.id) == newer
