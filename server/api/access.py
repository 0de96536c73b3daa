"""Authentication of API requests and the one access guard.

Every route declares what it needs in ``opt`` through :func:`public`, :func:`signed_in`,
:func:`global_role` or :func:`project_role`; :func:`access_guard` (installed on the API routers)
enforces it with the predicates of ``server/tenancy/access.py``:

- no credentials: 401; a read-only key on a writing route: 403 ``read_only_key``;
- a route with ``{project_id}``: no role in that project (or a key limited to another project)
  is 404, exactly like a project that does not exist; a role too low (or not a global admin on
  an admin-only project route) is 403;
- cookie-authenticated unsafe requests must carry the session's ``X-CSRF-Token``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, TypeAlias

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.handlers.base import BaseRouteHandler

from server.accounts.sessions import SESSION_COOKIE, SessionData, load_session
from server.accounts.tables import User
from server.errors import ErrorCode, Forbidden, NotFound, Unauthorized
from server.tenancy import access
from server.tenancy.access import Actor, GlobalRole, ProjectRole
from server.tenancy.actor_cache import ActorCache, Loaded
from server.tenancy.apikeys import hash_secret, resolve_api_key
from server.tenancy.queries import actor_for
from server.tenancy.tables import Project
from server.web_state import actors_of, redis_of

CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ACCESS_OPT = "access"
MAX_ID = 2**31 - 1

CurrentActor: TypeAlias = NamedDependency[Actor]
"""Declare ``actor: CurrentActor`` in a handler to receive the caller resolved by the guard."""


@dataclass(frozen=True, slots=True)
class Rule:
    authenticated: bool = True
    global_role: GlobalRole | None = None
    project_role: ProjectRole | None = None
    writes: bool | None = None
    """Whether the route changes data; None means "unsafe HTTP method"."""


def public() -> dict[str, Any]:
    return {ACCESS_OPT: Rule(authenticated=False)}


def signed_in(*, writes: bool | None = None) -> dict[str, Any]:
    return {ACCESS_OPT: Rule(global_role=GlobalRole.USER, writes=writes)}


def global_role(role: GlobalRole) -> dict[str, Any]:
    return {ACCESS_OPT: Rule(global_role=role)}


def project_role(role: ProjectRole, *, writes: bool | None = None) -> dict[str, Any]:
    return {ACCESS_OPT: Rule(project_role=role, writes=writes)}


def rule_of(handler: BaseRouteHandler) -> Rule:
    rule = handler.opt.get(ACCESS_OPT)
    if not isinstance(rule, Rule):
        raise RuntimeError(f"route {handler} declares no access rule")  # caught by tests at start-up
    return rule


async def _key_actor(actors: ActorCache, secret: str) -> Actor | None:
    return await actors.resolve("key:" + hash_secret(secret), lambda: resolve_api_key(secret))


async def _session_actor(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[Actor, SessionData] | None:
    # The session itself is read from Redis every time, so logging out takes effect at once.
    session = await load_session(redis_of(connection.app), connection.cookies.get(SESSION_COOKIE))
    if session is None:
        return None

    async def load() -> Loaded | None:
        user: User | None = (
            await User.objects().where((User.id == session.user_id) & (User.active == True)).first()  # noqa: E712
        )
        return None if user is None else (await actor_for(user), None)

    actor = await actors_of(connection.app).resolve(f"user:{session.user_id}", load)
    return None if actor is None else (actor, session)


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor | None:
    """The caller: a bearer API key, else a console session cookie (with its CSRF check).

    Resolved callers are reused from the process's :class:`ActorCache`, which every access
    change empties.
    """
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthorized(
                "Use 'Authorization: Bearer <api key>'.", code=ErrorCode.BAD_AUTHORIZATION_HEADER
            )
        actor = await _key_actor(actors_of(connection.app), credential.strip())
        if actor is None:
            raise Unauthorized("Unknown, revoked or expired API key.", code=ErrorCode.INVALID_API_KEY)
        return actor
    resolved = await _session_actor(connection)
    if resolved is None:
        return None
    actor, session = resolved
    if connection.scope.get("method", "GET") not in SAFE_METHODS:
        sent = connection.headers.get(CSRF_HEADER, "")
        if not session.csrf_token or not hmac.compare_digest(sent, session.csrf_token):
            raise Forbidden("Missing or wrong X-CSRF-Token header.", code=ErrorCode.CSRF_FAILED)
    return actor


async def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    if connection.scope.get("method") == "OPTIONS" and ACCESS_OPT not in handler.opt:
        return  # Litestar's own OPTIONS answer (allowed methods): no data, nothing to guard
    rule = rule_of(handler)
    if not rule.authenticated:
        return
    actor = await authenticate(connection)
    if actor is None:
        raise Unauthorized("Sign in or send an API key.")
    connection.state.actor = actor
    writes = rule.writes if rule.writes is not None else connection.scope.get("method") not in SAFE_METHODS
    if writes and not access.can_write(actor):
        raise Forbidden("This API key is read-only.", code=ErrorCode.READ_ONLY_KEY)
    project_id = connection.path_params.get("project_id")
    if project_id is not None and (not isinstance(project_id, int) or not 1 <= project_id <= MAX_ID):
        # Guards run before parameter validation: check the range here, before any query uses it.
        raise ValidationException(
            "The request is not valid.",
            extra=[{"key": "project_id", "message": f"Expected `int` in 1..{MAX_ID}"}],
        )
    if project_id is not None and (
        not isinstance(project_id, int) or access.role_in(actor, project_id) is None
    ):
        raise NotFound("No such project.")
    if (
        project_id is not None
        and access.is_admin(actor)
        and not await Project.exists().where(Project.id == project_id)
    ):
        # Members' projects exist (memberships cascade); a global admin may name any id.
        raise NotFound("No such project.")
    if rule.project_role is not None:
        if project_id is None:
            raise RuntimeError(f"{handler} declares a project role but has no {{project_id}}")
        if not access.has_project_role(actor, project_id, rule.project_role):
            raise Forbidden(f"This needs the {rule.project_role.value} role in the project.")
    if rule.global_role is not None and not access.has_global_role(actor, rule.global_role):
        raise Forbidden("Global admins only.")


def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    """The dependency ``actor``: set by :func:`access_guard` before any handler runs."""
    actor: Actor = request.state.actor
    return actor
