"""The landing page: the viewer's projects, with where each role starts."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from console.render import Page, render
from console.shell import CurrentViewer, Need, needs


@get("/", name="console:home", opt=needs(Need.SIGNED_IN))
async def home(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Page:
    return render(request, "console/home.html", {"section": "home"})


route_handlers = [home]
