"""The console's router: every page module's handlers, the guard, and errors as pages."""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide
from litestar.plugins.htmx import HTMXRequest

from console import home, settings, signin
from console.errors import console_exception_handlers
from console.shell import console_guard, provide_viewer

console_router = Router(
    path="/console",
    route_handlers=[*signin.route_handlers, *home.route_handlers, *settings.route_handlers],
    guards=[console_guard],
    dependencies={"viewer": Provide(provide_viewer, sync_to_thread=False)},
    exception_handlers=console_exception_handlers,
    request_class=HTMXRequest,
    include_in_schema=False,
)
