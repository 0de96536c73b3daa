"""``python -m server createadmin``: create (or reset) a global admin from the command line."""

from __future__ import annotations

import getpass
import sys

from redis.asyncio import Redis

from server.accounts import services
from server.accounts.tables import User
from server.errors import DomainError


class CommandError(Exception):
    """An expected failure of a command: printed as one line, exit status 1."""


def read_password(*, stdin_is_tty: bool) -> str:
    """Prompt twice on a terminal; otherwise take the first line of standard input."""
    if not stdin_is_tty:
        line = sys.stdin.readline()
        if not line:
            raise CommandError("no password on standard input")
        return line.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password (again): "):
        raise CommandError("the two passwords differ")
    return first


async def createadmin(redis: Redis, email: str, password: str, *, name: str = "", reset: bool = False) -> str:
    """Create a global admin, or with ``reset`` turn an existing user into one with this password."""
    normalized = services.normalize_email(email)
    existing = await User.objects().where(User.email == normalized).first()
    try:
        if existing is None:
            await services.create_user(email, password, name=name, global_role=User.GlobalRole.ADMIN)
            return f"created admin {normalized}"
        if not reset:
            raise CommandError(
                f"user {normalized} already exists (add --reset to make them an admin with this password)"
            )
        await services.set_password(redis, existing.id, password)
        await services.set_global_role(existing.id, User.GlobalRole.ADMIN)
        await User.update({User.active: True}).where(User.id == existing.id)
        return f"reset admin {normalized}"
    except DomainError as error:
        raise CommandError(error.message) from None
