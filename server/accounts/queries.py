"""Account read side."""

from __future__ import annotations

import re

from server.accounts.tables import User


def _like_term(search: str) -> str:
    return re.sub(r"[%_\\\x00]", "", search.strip().lower())[:100]


async def find_users(search: str | None = None, *, limit: int = 50, offset: int = 0) -> list[User]:
    """Users by id; ``search`` matches part of the e-mail or the name."""
    query = User.objects().order_by(User.id)
    if search and (term := _like_term(search)):
        query = query.where(User.email.ilike(f"%{term}%") | User.name.ilike(f"%{term}%"))
    users: list[User] = await query.limit(limit).offset(offset)
    return users
