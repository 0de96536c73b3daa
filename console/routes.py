"""The console's router: every page module's handlers, the guard, and errors as pages.

A page module exports ``route_handlers``; add it to :data:`PAGES` (the inbox does the same).
"""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide
from litestar.plugins.htmx import HTMXRequest

from console import (
    admin_mailbox,
    admin_projects,
    admin_system,
    admin_users,
    apikeys,
    canned,
    home,
    inbox,
    inbox_actions,
    inbox_screenshot,
    install,
    members,
    profile,
    settings,
    signin,
)
from console.errors import console_exception_handlers
from console.shell import console_guard, provide_viewer

PAGES = (
    signin,
    home,
    settings,
    install,
    canned,
    apikeys,
    admin_projects,
    admin_users,
    inbox,
    inbox_actions,
    inbox_screenshot,
    profile,
    members,
    admin_mailbox,
    admin_system,
)

console_router = Router(
    path="/console",
    route_handlers=[handler for page in PAGES for handler in page.route_handlers],
    guards=[console_guard],
    dependencies={"viewer": Provide(provide_viewer, sync_to_thread=False)},
    exception_handlers=console_exception_handlers,
    request_class=HTMXRequest,
    include_in_schema=False,
)
