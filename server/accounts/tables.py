"""Accounts tables: the user, also piccolo-admin's auth table."""

from __future__ import annotations

import enum
from typing import Any

from piccolo.apps.user.tables import BaseUser
from piccolo.columns import Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.accounts import passwords


class User(BaseUser, tablename="parley_user"):
    """A person who signs in to the console or the API.

    ``username`` always equals the lower-cased ``email``, so piccolo-admin's login and ours
    agree. ``admin`` is kept in step with ``global_role`` by the account services, because
    piccolo-admin reads ``admin``. Passwords are argon2id hashes (BaseUser's PBKDF2 replaced).
    """

    class GlobalRole(enum.StrEnum):
        ADMIN = "admin"
        USER = "user"

    name = Varchar(length=200, default="", help_text="Display name shown to visitors and colleagues.")
    global_role = Varchar(
        length=10,
        choices=GlobalRole,
        default=GlobalRole.USER,
        help_text="ADMIN runs the installation; USER reaches projects through memberships.",
    )
    link_generation = Integer(
        default=0,
        help_text="Bumped whenever a password is set from a mailed link: every older link stops working.",
    )
    created_at = Timestamptz(default=TimestamptzNow())

    def __init__(self, **kwargs: Any) -> None:
        password = kwargs.get("password")
        if password and not passwords.is_hashed(password):
            kwargs["password"] = passwords.hash_password(password)
        # BaseUser.__init__ would hash again unless the value looks like PBKDF2.
        Table.__init__(self, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "password" and isinstance(value, str) and value and not passwords.is_hashed(value):
            value = passwords.hash_password(value)
        Table.__setattr__(self, name, value)

    @classmethod
    def hash_password(cls, password: str, salt: str = "", iterations: int | None = None) -> str:
        if len(password) > passwords.MAX_PASSWORD_LENGTH:
            raise ValueError("The password is too long.")
        return passwords.hash_password(password)

    @classmethod
    async def login(cls, username: str, password: str) -> int | None:
        """Check an email/password pair for piccolo-admin; returns the user id of an active user."""
        from server.accounts.services import authenticate

        user = await authenticate(username, password)
        return user.id if user is not None else None
