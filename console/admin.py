"""piccolo-admin at ``/admin`` and SAQ's queue UI at ``/queues``, for global admins only.

Both are ASGI apps of their own. An outer gate checks the console session (Redis) and the
global role before a request reaches them: anonymous browsers are sent to ``/console/login``,
other callers get a JSON 401/403. piccolo-admin also has a login of its own (a row in
piccolo_api's sessions table, cookie ``id`` on ``/admin``); the console login opens that
session too for admins, so one sign-in reaches both.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers import asgi
from litestar.types import ASGIApp, Receive, Scope, Send
from piccolo_admin.endpoints import TableConfig, create_admin
from piccolo_api.session_auth.tables import SessionsBase
from saq.web.starlette import saq_web

from console.auth import is_global_admin, session_user
from server.accounts.sessions import SESSION_TTL_SECONDS
from server.accounts.tables import User
from server.chat.tables import Conversation, Message, Visitor
from server.errors import ErrorCode
from server.outbox.tables import OutboxEvent
from server.tenancy.tables import ApiKey, Project, ProjectMember

ADMIN_PATH = "/admin"
QUEUES_PATH = "/queues"  # not under /admin: that mount would take it
ADMIN_SESSION_COOKIE = "id"  # piccolo_api's session cookie name


def build_admin(*, production: bool) -> ASGIApp:
    user_config = TableConfig(
        User,
        visible_columns=[User.id, User.email, User.name, User.global_role, User.active, User.created_at],
        exclude_visible_columns=[],
    )
    app: ASGIApp = create_admin(
        tables=[user_config, Project, ProjectMember, ApiKey, Visitor, Conversation, Message, OutboxEvent],
        auth_table=User,
        session_table=SessionsBase,
        session_expiry=timedelta(seconds=SESSION_TTL_SECONDS),
        production=production,
        site_name="Parley admin",
    )
    return app


async def open_admin_session(user_id: int) -> tuple[str, int]:
    """A piccolo-admin session for a global admin who just signed in: (token, max-age)."""
    now = datetime.now()
    session = await SessionsBase.create_session(
        user_id=user_id,
        expiry_date=now + timedelta(seconds=SESSION_TTL_SECONDS),
        max_expiry_date=now + timedelta(seconds=SESSION_TTL_SECONDS),
    )
    return str(session.token), SESSION_TTL_SECONDS


async def close_admin_session(token: str | None) -> None:
    if token:
        await SessionsBase.remove_session(token=token)


async def _refuse(scope: Scope, send: Any, *, signed_in: bool) -> None:
    path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
    accepts_html = any(
        name == b"accept" and b"text/html" in value for name, value in scope.get("headers", [])
    )
    if accepts_html and not signed_in:
        location = "/console/login?next=" + quote(path, safe="/")
        await send(
            {"type": "http.response.start", "status": 303, "headers": [(b"location", location.encode())]}
        )
        await send({"type": "http.response.body", "body": b""})
        return
    status, code = (403, ErrorCode.FORBIDDEN) if signed_in else (401, ErrorCode.UNAUTHORIZED)
    body = json.dumps({"code": code, "message": "Global admins only."}).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse_put(send: Any) -> None:
    """piccolo-admin's UI edits rows with PATCH, which hashes a typed password (piccolo_api does
    for auth tables); its PUT stores every value as sent, a password too. Nothing needs PUT."""
    body = json.dumps({"code": ErrorCode.METHOD_NOT_ALLOWED, "message": "Use PATCH."}).encode()
    await send(
        {"type": "http.response.start", "status": 405, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


def admin_gate(prefix: str, inner: Any, *, pass_root_path: bool) -> Any:
    """A Litestar mount that lets only global admins through to ``inner``.

    With ``pass_root_path`` the inner app gets the unstripped path and the prefix as
    ``root_path`` (SAQ's UI builds its links from it; Litestar's mount strips the prefix).
    """

    @asgi(prefix, is_mount=True, copy_scope=True, include_in_schema=False)
    async def gate(scope: Scope, receive: Receive, send: Send) -> None:
        litestar_app: Litestar = scope["litestar_app"]
        user = await session_user(ASGIConnection(scope), litestar_app.state.redis)
        if not is_global_admin(user):
            await _refuse(scope, send, signed_in=user is not None)
            return
        if scope.get("method") == "PUT":
            await _refuse_put(send)
            return
        if pass_root_path:
            raw = scope.get("raw_path", b"").decode("latin-1").split("?")[0] or prefix + scope["path"]
            scope = cast(Scope, {**scope, "root_path": prefix, "path": raw})
        await inner(scope, receive, send)

    return gate


def admin_routes(app_state: Any, *, production: bool) -> list[Any]:
    return [
        admin_gate(ADMIN_PATH, build_admin(production=production), pass_root_path=False),
        admin_gate(QUEUES_PATH, saq_web(QUEUES_PATH, queues=[app_state.queue]), pass_root_path=True),
    ]
