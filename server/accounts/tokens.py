"""Short-lived signed tokens for the realtime gateway.

Format: ``<payload>.<signature>``, both base64url without padding. The payload is the msgspec
JSON of :class:`TokenClaims`; the signature is HMAC-SHA256 over the payload with a key derived
from ``SECRET_KEY`` for this purpose only. Agents get one from ``POST /api/v1/realtime/token``;
visitors from the widget session (bound to project + visitor uid).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Literal

import msgspec

AGENT_TOKEN_TTL_SECONDS = 15 * 60
VISITOR_TOKEN_TTL_SECONDS = 15 * 60
_PURPOSE = b"parley realtime token v1"


class TokenClaims(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    kind: Literal["agent", "visitor"]
    exp: int
    """Unix time after which the token is refused."""
    user_id: int | None = None
    """Agents: the user."""
    project_id: int | None = None
    """Visitors: their project. Agents: the only project the token reaches, if limited."""
    visitor_uid: str | None = None
    read_only: bool = False
    api_key_id: int | None = None
    """Agents: the API key the token was made with, if any (its socket dies with the key)."""
    public_key: str | None = None
    """Visitors: the widget key the session was opened with. The widget API and the socket
    refuse the token once that key is rotated away (``unknown_widget_key``) and check the page's
    origin against the key's project on every call."""


class InvalidToken(Exception):
    """The token is malformed, forged or expired; the message says which (safe to show)."""


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), _PURPOSE, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: TokenClaims, secret_key: str) -> str:
    payload = msgspec.json.encode(claims)
    signature = hmac.new(_key(secret_key), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def agent_token(
    user_id: int,
    secret_key: str,
    *,
    project_id: int | None = None,
    read_only: bool = False,
    api_key_id: int | None = None,
    now: float | None = None,
) -> tuple[str, TokenClaims]:
    exp = int((now if now is not None else time.time()) + AGENT_TOKEN_TTL_SECONDS)
    claims = TokenClaims(
        kind="agent",
        exp=exp,
        user_id=user_id,
        project_id=project_id,
        read_only=read_only,
        api_key_id=api_key_id,
    )
    return sign(claims, secret_key), claims


def visitor_token(
    project_id: int,
    visitor_uid: str,
    secret_key: str,
    *,
    public_key: str | None = None,
    ttl_seconds: int = VISITOR_TOKEN_TTL_SECONDS,
    now: float | None = None,
) -> tuple[str, TokenClaims]:
    exp = int((now if now is not None else time.time()) + ttl_seconds)
    claims = TokenClaims(
        kind="visitor", exp=exp, project_id=project_id, visitor_uid=visitor_uid, public_key=public_key
    )
    return sign(claims, secret_key), claims


def verify(token: str, secret_key: str, *, now: float | None = None) -> TokenClaims:
    """The token's claims, or :class:`InvalidToken`."""
    if not isinstance(token, str) or len(token) > 2048 or token.count(".") != 1:
        raise InvalidToken("malformed token")
    payload_text, signature_text = token.split(".")
    try:
        payload, signature = _unb64(payload_text), _unb64(signature_text)
    except (ValueError, TypeError):
        raise InvalidToken("malformed token") from None
    expected = hmac.new(_key(secret_key), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidToken("bad signature")
    try:
        claims = msgspec.json.decode(payload, type=TokenClaims)
    except msgspec.DecodeError:
        raise InvalidToken("malformed token") from None
    if claims.exp < (now if now is not None else time.time()):
        raise InvalidToken("token expired")
    return claims
