"""Hydration: merge the visitors' ephemeral state (Redis) into rows read from PostgreSQL.

For a page of N visitors this costs exactly one round trip: one MGET for the current URLs and
one ZMSCORE for presence, pipelined together (DESIGN §6). Key names live in ``Keys``; the
realtime gateway writes them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis

from server.chat.views import VisitorLive
from server.redis_client import Keys


class _Location(msgspec.Struct):
    url: str | None = None
    title: str | None = None


_decode_location = msgspec.json.Decoder(_Location)
_UNKNOWN = _Location()


async def visitor_live_states(redis: Redis, project_id: int, uids: Sequence[str]) -> dict[str, VisitorLive]:
    unique = list(dict.fromkeys(uids))
    if not unique:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.mget([Keys.visitor_location(project_id, uid) for uid in unique])
        pipe.zmscore(Keys.visitor_presence(project_id), unique)
        locations, scores = await pipe.execute()
    now = time.time()
    states: dict[str, VisitorLive] = {}
    for uid, raw, score in zip(unique, locations, scores, strict=True):
        try:  # not contextlib.suppress: measured at 4% of the whole list request
            location = _UNKNOWN if raw is None else _decode_location.decode(raw)
        except msgspec.DecodeError:
            location = _UNKNOWN  # a malformed entry reads as unknown: it must never fail the list
        states[uid] = VisitorLive(
            online=score is not None and float(score) > now,
            current_url=location.url,
            page_title=location.title,
        )
    return states
