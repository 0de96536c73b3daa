"""Console sessions, kept in Redis.

The browser holds a random token in an HttpOnly cookie; Redis holds only its SHA-256, so a
leaked Redis dump cannot be replayed as a cookie. Each user's token hashes are also kept in a
set, so deactivating a user ends every session at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from server.redis_client import Keys

SESSION_COOKIE = "parley_session"
SESSION_TTL_SECONDS = 8 * 3600


class SessionData(msgspec.Struct, frozen=True):
    user_id: int
    created_at: float
    csrf_token: str = ""
    """Required in ``X-CSRF-Token`` on unsafe API calls authenticated by this session's cookie."""
    user_agent: str = ""
    """The browser that signed in (shortened), so a user can tell their sessions apart."""
    ip: str = ""


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    data: SessionData


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_session(
    redis: Redis, user_id: int, *, now: float, user_agent: str = "", ip: str = ""
) -> Session:
    token = secrets.token_urlsafe(32)
    data = SessionData(
        user_id=user_id,
        created_at=now,
        csrf_token=secrets.token_urlsafe(24),
        user_agent=user_agent[:200],
        ip=ip[:64],
    )
    token_hash = _token_hash(token)
    # The user's set first, then the session: the two keys live in different cluster slots (no
    # transaction), and a failure between them leaves a harmless name, never an untracked session.
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sadd(Keys.user_sessions(user_id), token_hash)
        pipe.expire(Keys.user_sessions(user_id), SESSION_TTL_SECONDS)
        pipe.set(Keys.session(token_hash), msgspec.json.encode(data), ex=SESSION_TTL_SECONDS)
        await pipe.execute()
    return Session(token=token, data=data)


async def load_session(redis: Redis, token: str | None) -> SessionData | None:
    if not token or len(token) > 128:
        return None
    raw = await redis.get(Keys.session(_token_hash(token)))
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw, type=SessionData)
    except msgspec.DecodeError:
        return None


async def destroy_session(redis: Redis, token: str | None) -> None:
    if not token or len(token) > 128:
        return
    token_hash = _token_hash(token)
    raw = await redis.getdel(Keys.session(token_hash))
    if raw is not None:
        data = msgspec.json.decode(raw, type=SessionData)
        await redis.srem(Keys.user_sessions(data.user_id), token_hash)


async def destroy_user_sessions(redis: Redis, user_id: int) -> None:
    hashes = await redis.smembers(Keys.user_sessions(user_id))
    keys = [Keys.session(h.decode() if isinstance(h, bytes) else h) for h in hashes]
    await redis.delete(*keys, Keys.user_sessions(user_id))


def session_id(token: str) -> str:
    """The public name of a session (its token's hash): what lists of sessions show and compare."""
    return _token_hash(token)


async def user_sessions(redis: Redis, user_id: int) -> list[tuple[str, SessionData]]:
    """The user's live sessions as (session id, data), newest first; ended ones are dropped from the set."""
    hashes = [
        h.decode() if isinstance(h, bytes) else h for h in await redis.smembers(Keys.user_sessions(user_id))
    ]
    if not hashes:
        return []
    raws = await redis.mget([Keys.session(h) for h in hashes])
    sessions: list[tuple[str, SessionData]] = []
    gone: list[str] = []
    for token_hash, raw in zip(hashes, raws, strict=True):
        if raw is None:
            gone.append(token_hash)
            continue
        try:
            sessions.append((token_hash, msgspec.json.decode(raw, type=SessionData)))
        except msgspec.DecodeError:
            gone.append(token_hash)
    if gone:
        await redis.srem(Keys.user_sessions(user_id), *gone)
    return sorted(sessions, key=lambda item: item[1].created_at, reverse=True)


async def destroy_other_sessions(redis: Redis, user_id: int, keep_token: str | None) -> int:
    """End every session of the user except the one of ``keep_token``; returns how many ended."""
    keep = _token_hash(keep_token) if keep_token else None
    others = [h for h, _ in await user_sessions(redis, user_id) if h != keep]
    if not others:
        return 0
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(*[Keys.session(h) for h in others])
        pipe.srem(Keys.user_sessions(user_id), *others)
        await pipe.execute()
    return len(others)
