"""The web process's access log: one INFO line per request (``WEB_ACCESS_LOG=false`` turns it off).

``GET /api/v1/projects/{project_id} 200 3.1ms id=5f0c…``: the route's path *template*, not the
path (no ids, e-mail addresses or tokens from URLs in the log, and one line shape per route), the
status, the time until the response was sent, and a request id: the caller's ``X-Request-ID`` when
it is a short token (a proxy's), else a new one; it is sent back in ``X-Request-ID`` so a user's
report and the log line can be matched. Applied as app-wide Litestar middleware, so it sees every
request that reaches a route handler (a request that matches no route is not logged).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("parley.access")

REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and _REQUEST_ID.match(value):
            return str(value.decode())
    return secrets.token_hex(8)


def access_log_middleware(app: ASGIApp) -> ASGIApp:
    async def logged(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: Any = message.setdefault("headers", [])
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %d %.1fms id=%s",
                scope.get("method", "-"),
                scope.get("path_template") or scope.get("path", "-"),
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )

    return logged
