"""Signed visitor identities: HMAC-SHA256 of the user id, or an HS256 JWT with ``exp``.

Both are made by the customer's server with the project's identity secret, so a visitor cannot
claim to be someone else. A bad signature is always refused; an unsigned claim is refused when
the project enforces identity, and otherwise kept only as unverified name/e-mail.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
import msgspec

from server.errors import ErrorCode, Unauthorized

ShortText = Annotated[str, msgspec.Meta(max_length=255)]


class IdentityClaim(msgspec.Struct, forbid_unknown_fields=True):
    """What the widget sends: ``user_id`` + ``signature`` (hex HMAC), or ``jwt``, or neither."""

    user_id: ShortText | None = None
    signature: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    jwt: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    name: ShortText | None = None
    email: ShortText | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    external_id: str | None
    """Set only when the claim was verified."""
    name: str | None
    email: str | None


def sign_user_id(user_id: str, secret: str) -> str:
    """The signature a customer's server computes (documented for them; used by tests)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def _from_jwt(token: str, secret: str) -> Identity:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}, leeway=30
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The identity token has expired.", code=ErrorCode.IDENTITY_EXPIRED) from None
    except jwt.InvalidTokenError:
        raise Unauthorized("The identity token is not valid.", code=ErrorCode.IDENTITY_INVALID) from None
    name, email = claims.get("name"), claims.get("email")
    return Identity(
        external_id=str(claims["sub"])[:255],
        name=str(name)[:200] if name is not None else None,
        email=str(email)[:255] if email is not None else None,
    )


def verify_identity(claim: IdentityClaim | None, secret: str, *, enforce: bool) -> Identity:
    if claim is None:
        return Identity(external_id=None, name=None, email=None)
    if claim.jwt is not None:
        return _from_jwt(claim.jwt, secret)
    if claim.signature is not None:
        expected = sign_user_id(claim.user_id or "", secret)
        if not claim.user_id or not hmac.compare_digest(claim.signature.lower(), expected):
            raise Unauthorized("The identity signature does not match.", code=ErrorCode.IDENTITY_INVALID)
        return Identity(external_id=claim.user_id, name=claim.name, email=claim.email)
    if enforce and (claim.user_id or claim.name or claim.email):
        raise Unauthorized("This project accepts only signed identities.", code=ErrorCode.IDENTITY_REQUIRED)
    # Unsigned and not enforced: a visitor may say who they are, but cannot take over an id.
    return Identity(external_id=None, name=claim.name, email=claim.email)
