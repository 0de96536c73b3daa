"""Accounts DTOs (msgspec). Requests forbid unknown fields so typos are 400s, not silent no-ops."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, examples=["ana@example.com"])]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
"""A password being checked (login): any length up to the maximum."""
NewPassword = Annotated[str, msgspec.Meta(min_length=8, max_length=256)]
"""A password being chosen: at least 8 characters (``passwords.MIN_PASSWORD_LENGTH``)."""
Name = Annotated[str, msgspec.Meta(max_length=200)]


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: NewPassword
    name: Name = ""
    global_role: Literal["admin", "user"] = "user"


class UserView(msgspec.Struct):
    id: int
    email: str
    name: str
    global_role: Literal["admin", "user"]
    active: bool
    created_at: datetime


class SessionView(msgspec.Struct):
    user: UserView
    csrf_token: str
    """Send it as ``X-CSRF-Token`` on unsafe requests authenticated by the session cookie."""


class SetPasswordRequest(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    """From a mailed link: an invitation for a new account (``inv_…``) or a password reset (``pwr_…``)."""
    password: NewPassword
    name: Name = ""
    """A new account's display name (invitations only)."""


class PasswordResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email


class PasswordResetQueued(msgspec.Struct):
    """The same for every address, with an account or without."""

    message: str = "If this address has an account, a link to choose a new password is on its way."


def user_view(user: object) -> UserView:
    from server.accounts.tables import User

    assert isinstance(user, User)
    return UserView(
        id=user.id,
        email=user.email,
        name=user.name,
        global_role="admin" if user.global_role == User.GlobalRole.ADMIN.value else "user",
        active=user.active,
        created_at=user.created_at,
    )
