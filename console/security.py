"""Headers every console response carries (pages, fragments, redirects and error pages alike).

A ``before_send`` hook of the app, so even a response that an exception handler or the CSRF
middleware produced gets them. The policy allows scripts and styles only from our own origin (no
inline scripts, no ``eval``), sockets only to the realtime gateway, and no framing at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from server.settings import Settings

CONSOLE_PREFIX = "/console"


def realtime_origins(settings: Settings) -> list[str]:
    """The gateway's origin as the browser will open it: ``ws(s)://`` and ``http(s)://`` forms."""
    public_url = str(getattr(settings.realtime, "public_url", "") or "")
    if not public_url:
        public_url = f"http://{settings.realtime.host}:{settings.realtime.port}"
    parts = urlsplit(public_url)
    secure = parts.scheme in ("https", "wss")
    netloc = parts.netloc
    return [f"{'wss' if secure else 'ws'}://{netloc}", f"{'https' if secure else 'http'}://{netloc}"]


def content_security_policy(settings: Settings) -> str:
    connect = " ".join(["'self'", *realtime_origins(settings)])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "frame-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
        ]
    )


def security_headers(settings: Settings) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
    if settings.security.secure_cookies:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


def console_headers_hook(settings: Settings) -> Callable[[Message, Scope], Awaitable[None]]:
    """The app's ``before_send`` hook adding :func:`security_headers` under ``/console``."""
    headers = security_headers(settings)

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        if not scope["path"].startswith(CONSOLE_PREFIX):
            return
        mutable = MutableScopeHeaders.from_message(message)
        for name, value in headers.items():
            if name not in mutable:
                mutable[name] = value

    return add_headers
