"""Account write side: creating users, checking passwords, changing global roles."""

from __future__ import annotations

import re

from redis.asyncio import Redis

from server.accounts import passwords
from server.accounts.sessions import destroy_user_sessions
from server.accounts.tables import User
from server.errors import Conflict, ErrorCode, Invalid, NotFound
from server.tenancy.actor_cache import forget_cached_actors

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL_LENGTH = 254


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> str:
    """The normalised address, or :class:`Invalid` naming the ``email`` field."""
    normalized = normalize_email(email)
    if len(normalized) > MAX_EMAIL_LENGTH or not _EMAIL.match(normalized):
        raise Invalid("Not a valid e-mail address.", fields={"email": "not a valid e-mail address"})
    return normalized


def check_new_password(password: str) -> None:
    problem = passwords.password_problem(password)
    if problem is not None:
        raise Invalid(f"Password {problem}.", fields={"password": problem})


async def create_user(
    email: str,
    password: str | None,
    *,
    name: str = "",
    global_role: User.GlobalRole = User.GlobalRole.USER,
    active: bool = True,
) -> User:
    """Create a user. ``password=None`` makes an account that cannot log in until one is set."""
    normalized = check_email(email)
    if password is not None:
        check_new_password(password)
    if await User.exists().where(User.email == normalized):
        raise Conflict("A user with this e-mail address already exists.", code=ErrorCode.EMAIL_TAKEN)
    user = User(
        username=normalized,
        email=normalized,
        name=name.strip(),
        password=passwords.hash_password(password) if password is not None else "!",
        global_role=global_role.value,
        admin=global_role is User.GlobalRole.ADMIN,
        active=active,
    )
    await user.save()
    return user


async def authenticate(email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None (same work either way)."""
    normalized = normalize_email(email)
    if len(normalized) > MAX_EMAIL_LENGTH:
        normalized = ""
    user = await User.objects().where(User.email == normalized).first() if normalized else None
    stored = user.password if user is not None and passwords.is_hashed(user.password) else None
    if not passwords.verify_password(stored, password) or user is None or not user.active:
        return None
    if passwords.needs_rehash(user.password):
        await User.update({User.password: passwords.hash_password(password)}).where(User.id == user.id)
    return user


async def set_password(redis: Redis, user_id: int, password: str) -> None:
    """Change a password and end every console session of the user: whoever held one with the
    old password (a stolen cookie, a forgotten browser) must sign in again."""
    check_new_password(password)
    await User.update({User.password: passwords.hash_password(password)}).where(User.id == user_id)
    await destroy_user_sessions(redis, user_id)


async def set_global_role(user_id: int, role: User.GlobalRole, *, acting_user_id: int | None = None) -> None:
    """Change a user's global role; ``admin`` follows it because piccolo-admin reads that column.

    ``acting_user_id``: who asks; an admin cannot take their own admin role away.
    """
    if user_id == acting_user_id and role is not User.GlobalRole.ADMIN:
        raise Invalid("You cannot remove your own admin role.", code=ErrorCode.CANNOT_DEMOTE_SELF)
    await User.update({User.global_role: role.value, User.admin: role is User.GlobalRole.ADMIN}).where(
        User.id == user_id
    )


async def set_active(redis: Redis, user_id: int, active: bool, *, acting_user_id: int | None = None) -> User:
    """Deactivate a user (every console session ends, cached callers are forgotten) or reactivate them.

    ``acting_user_id``: who asks; nobody deactivates themself (the last admin could lock everyone out).
    """
    if not active and user_id == acting_user_id:
        raise Invalid("You cannot deactivate yourself.", code=ErrorCode.CANNOT_DEACTIVATE_SELF)
    user: User | None = await User.objects().where(User.id == user_id).first()
    if user is None:
        raise NotFound("No such user.")
    await User.update({User.active: active}).where(User.id == user_id)
    forget_cached_actors()
    if not active:
        await destroy_user_sessions(redis, user_id)
    user.active = active
    return user


async def rename_user(user_id: int, name: str) -> None:
    name = name.strip()
    if len(name) > 200:
        raise Invalid("The name is too long.", fields={"name": "Must be at most 200 characters"})
    await User.update({User.name: name}).where(User.id == user_id)


async def change_password(redis: Redis, user: User, current: str, new: str) -> None:
    """A signed-in user's own change: the current password first, then :func:`set_password`
    (which ends every session of the user, this one too: the caller opens a new one)."""
    if await authenticate(user.email, current) is None:
        raise Invalid("The current password is wrong.", fields={"current_password": "Wrong password"})
    await set_password(redis, user.id, new)
