"""Who is on the other end of a namespace CONNECT: visitor or agent, from the ``auth`` payload.

- ``/visitor``: ``{token}``, a visitor token from the widget session (bound to project + visitor
  uid + widget key). Optional ``project_id`` must match the token's. The token's widget key must
  still be the project's (``unknown_widget_key`` once rotated), and a browser's ``Origin`` must
  pass the project's allowed origins (:mod:`server.tenancy.origins`, the rule REST uses too).
- ``/agent``: ``{token}``, an agent token (``POST /api/v1/realtime/token``) or an API key (also
  accepted as ``{api_key}``). Optional ``projects: [id, ...]`` narrows the events to those
  projects; asking for one the agent may not see is refused.

Failures raise :class:`AuthError`, sent to the client as ``connect_error`` with its message and code.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any

from server.accounts.tokens import InvalidToken, TokenClaims, verify
from server.errors import ErrorCode
from server.realtime.connection import AgentPrincipal, VisitorPrincipal
from server.realtime.store import Store
from server.tenancy.access import Actor, visible_project_ids
from server.tenancy.origins import AllowedOrigins
from server.tenancy.queries import actor_for

MAX_PROJECTS_ASKED = 1000

ApiKeyHook = Callable[[str], Awaitable[Actor | None]]
WidgetLookup = Callable[[str], Awaitable[tuple[int, AllowedOrigins] | None]]
"""Public widget key -> (project id, allowed origins), None when no project has that key."""


class AuthError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def load_api_key_hook() -> ApiKeyHook | None:
    """``server.tenancy.apikeys.authenticate_api_key`` when that module exists (written separately)."""
    try:
        module = importlib.import_module("server.tenancy.apikeys")
    except ImportError:
        return None
    hook: ApiKeyHook | None = getattr(module, "authenticate_api_key", None)
    return hook


def _token_of(auth: dict[str, Any]) -> str:
    token = auth.get("token")
    if not isinstance(token, str) or not token:
        raise AuthError(ErrorCode.MISSING_TOKEN, "auth.token is required")
    return token


def _claims(token: str, secret_key: str) -> TokenClaims:
    try:
        return verify(token, secret_key)
    except InvalidToken as error:
        code = ErrorCode.TOKEN_EXPIRED if str(error) == "token expired" else ErrorCode.INVALID_TOKEN
        raise AuthError(code, str(error)) from None


class Authenticator:
    def __init__(
        self,
        store: Store,
        secret_key: str,
        api_key_hook: ApiKeyHook | None,
        widget_lookup: WidgetLookup | None = None,
    ) -> None:
        self._store = store
        self._secret_key = secret_key
        self._api_key_hook = api_key_hook
        self._widget_lookup = widget_lookup

    async def _origins_of(self, claims: TokenClaims) -> AllowedOrigins:
        """The allowed origins that apply to a visitor token: its widget key's project's, read
        through the widget cache (so a rotated key or a changed origin counts at once), or the
        project's for tokens that name no key."""
        assert claims.project_id is not None
        if claims.public_key is None or self._widget_lookup is None:
            return await self._store.allowed_origins(claims.project_id)
        found = await self._widget_lookup(claims.public_key)
        if found is None or found[0] != claims.project_id:
            raise AuthError(
                ErrorCode.UNKNOWN_WIDGET_KEY, "the widget key was rotated or removed: open a new session"
            )
        return found[1]

    async def visitor(self, auth: dict[str, Any], origin: str | None) -> VisitorPrincipal:
        claims = _claims(_token_of(auth), self._secret_key)
        if claims.kind != "visitor" or claims.project_id is None or not claims.visitor_uid:
            raise AuthError(ErrorCode.WRONG_TOKEN_KIND, "a visitor token is required on /visitor")
        asked = auth.get("project_id")
        if asked is not None and asked != claims.project_id:
            raise AuthError(ErrorCode.WRONG_PROJECT, "the token belongs to another project")
        # The one origin rule, as on the REST widget API (server/tenancy/origins.py).
        origins = await self._origins_of(claims)
        if origin is not None and not origins.allows(origin):
            raise AuthError(
                ErrorCode.ORIGIN_NOT_ALLOWED, f"origin {origin[:100]} is not allowed for this project"
            )
        return VisitorPrincipal(project_id=claims.project_id, visitor_uid=claims.visitor_uid)

    async def agent(self, auth: dict[str, Any]) -> AgentPrincipal:
        api_key = auth.get("api_key")
        if isinstance(api_key, str) and api_key:
            actor = await self._actor_from_api_key(api_key)
        else:
            token = _token_of(auth)
            if token.count(".") != 1 and self._api_key_hook is not None:
                actor = await self._actor_from_api_key(token)
            else:
                actor = await self._actor_from_token(_claims(token, self._secret_key))
        visible = visible_project_ids(actor)
        if visible is None:
            visible = await self._store.all_project_ids()
        asked = auth.get("projects")
        if asked is not None:
            if (
                not isinstance(asked, list)
                or len(asked) > MAX_PROJECTS_ASKED
                or not all(isinstance(p, int) and not isinstance(p, bool) for p in asked)
            ):
                raise AuthError(ErrorCode.INVALID_AUTH, "auth.projects must be a list of project ids")
            refused = sorted(set(asked) - visible)
            if refused:
                raise AuthError(ErrorCode.FORBIDDEN_PROJECT, f"no access to project {refused[0]}")
            visible = frozenset(asked)
        return AgentPrincipal(actor=actor, project_ids=frozenset(visible))

    async def _actor_from_token(self, claims: TokenClaims) -> Actor:
        if claims.kind != "agent" or claims.user_id is None:
            raise AuthError(ErrorCode.WRONG_TOKEN_KIND, "an agent token or API key is required on /agent")
        user = await self._store.active_user(claims.user_id)
        if user is None:
            raise AuthError(ErrorCode.INVALID_TOKEN, "the token's user is unknown or inactive")
        if claims.api_key_id is not None and not await self._store.api_key_usable(claims.api_key_id):
            raise AuthError(ErrorCode.INVALID_TOKEN, "the token's API key was revoked or has expired")
        return await actor_for(
            user, key_project_id=claims.project_id, read_only=claims.read_only, api_key_id=claims.api_key_id
        )

    async def _actor_from_api_key(self, secret: str) -> Actor:
        if self._api_key_hook is None:
            raise AuthError(ErrorCode.INVALID_TOKEN, "API keys are not accepted here yet")
        actor = await self._api_key_hook(secret)
        if actor is None:
            raise AuthError(ErrorCode.INVALID_TOKEN, "unknown, revoked or expired API key")
        return actor
