"""Who is signed in to the console, from the session cookie."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from redis.asyncio import Redis

from server.accounts.sessions import SESSION_COOKIE, load_session
from server.accounts.tables import User


async def session_user(connection: ASGIConnection[Any, Any, Any, Any], redis: Redis) -> User | None:
    """The active user whose session cookie this request carries, or None."""
    data = await load_session(redis, connection.cookies.get(SESSION_COOKIE))
    if data is None:
        return None
    user: User | None = (
        await User.objects().where((User.id == data.user_id) & (User.active == True)).first()  # noqa: E712
    )
    return user


def is_global_admin(user: User | None) -> bool:
    return user is not None and user.global_role == User.GlobalRole.ADMIN.value
