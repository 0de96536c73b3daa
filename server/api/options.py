"""``OPTIONS`` answers that list every method of their path.

Litestar 2.25 makes the automatic ``OPTIONS`` handler of a path while it registers the path's
first handler; the handler's ``Allow`` header lists the methods known then, so
``/api/v1/projects/{id}`` answered ``GET, OPTIONS`` although it serves PATCH and DELETE too.
:class:`CompleteAllowMiddleware` rewrites ``Allow`` on ``OPTIONS`` answers from the app's final
routes (found by the ``path_template`` Litestar puts in the scope).
"""

from __future__ import annotations

from typing import Any

from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def _methods_by_path(app: Any) -> dict[str, str]:
    methods: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for path in {route.path, route.path_format}:
                methods.setdefault(path, set()).update(route.methods)
    return {path: ", ".join(sorted(found)) for path, found in methods.items()}


class CompleteAllowMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._allow: dict[str, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") != "OPTIONS":
            await self.app(scope, receive, send)
            return
        if self._allow is None:
            self._allow = _methods_by_path(scope["litestar_app"])
        allow = self._allow.get(str(scope.get("path_template", "")))

        async def send_with_allow(message: Message) -> None:
            if allow is not None and message["type"] == "http.response.start":
                original = list(message.get("headers", []))
                headers = [(k, v) for k, v in original if k.lower() != b"allow"]
                if len(headers) != len(original):  # only answers that had one
                    message = {**message, "headers": [*headers, (b"allow", allow.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_allow)
