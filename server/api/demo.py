"""``/demo/{public_key}``: a page that shows a project's widget, for managers to try it.

Served when the project allows this server's own origin (or ``*``), or in development (the
server on a loopback host), where the page says which origin to allow if the widget refuses.
The page carries the strict Content-Security-Policy we promise sites: no inline script or style.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from server.api.access import public
from server.chat.visitors import origin_allowed, project_by_public_key
from server.errors import NotFound
from server.web_state import redis_of, settings_of

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def widget_csp(web_origin: str, gateway: str) -> str:
    """The policy a site needs for the widget (docs/widget.md), as this page uses it."""
    socket = gateway.replace("http://", "ws://").replace("https://", "wss://")
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {web_origin}",
            f"connect-src 'self' {web_origin} {socket}",
            "style-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


@get("/demo/{public_key:str}", opt=public(), include_in_schema=False)
async def demo_page(request: Request[Any, Any, Any], public_key: FromPath[str]) -> Template:
    try:
        project = await project_by_public_key(redis_of(request.app), public_key)
    except NotFound:
        raise NotFoundException("No such widget key.") from None
    origin = f"{request.url.scheme}://{request.url.netloc}"
    allowed = origin_allowed(project, origin)
    development = request.url.hostname in LOOPBACK_HOSTS
    if not (allowed or development):
        raise NotFoundException("No such widget key.")
    gateway = settings_of(request.app).realtime.public_url
    return Template(
        template_name="demo.html",
        context={"project": project, "public_key": public_key, "origin": origin, "allowed": allowed},
        headers={"content-security-policy": widget_csp(origin, gateway), "cache-control": "no-store"},
    )
