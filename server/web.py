"""The Litestar app factory: the one place the web process is assembled.

It stands above both web transports (the JSON API in ``server/api/`` and the console in
``console/``) and mounts piccolo-admin and the SAQ UI, so neither transport imports the other.
"""

from __future__ import annotations

from logging import INFO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from litestar import Litestar, Request, Response
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from console.admin import ADMIN_PATH, QUEUES_PATH, admin_routes
from console.errors import console_not_found
from console.render import configure_templates
from console.routes import console_router
from console.security import CONSOLE_PREFIX, console_headers_hook
from server.access_log import access_log_middleware
from server.access_log import log as access_log
from server.api.demo import demo_page
from server.api.errors import exception_handlers, http_error_handler
from server.api.health import healthz, readyz
from server.api.json_body import JSONRequest
from server.api.openapi import make_exact, openapi_config
from server.api.options import CompleteAllowMiddleware
from server.api.v1.router import v1_router
from server.api.widget import widget_router
from server.api.widget_assets import widget_loader, widget_module
from server.queue import make_queue
from server.screenshots.services import SCREENSHOTS_QUEUE
from server.settings import Settings, configure_logging, get_settings
from server.web_state import lifespan

ROOT = Path(__file__).resolve().parent.parent
CSRF_COOKIE = "parley_csrf"
CSRF_HEADER = "x-csrf-token"


def _not_found(request: Request[Any, Any, Any], error: NotFoundException) -> Response[Any]:
    """No route matched: a console path gets the console's 404 page, anything else the API's JSON."""
    if request.url.path.startswith(CONSOLE_PREFIX):
        return console_not_found(request, error)
    return http_error_handler(request, error)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings)
    queue = make_queue(settings.queue_redis)
    screenshot_queue = make_queue(settings.queue_redis, name=SCREENSHOTS_QUEUE, concurrency=1)
    state = State({"settings": settings, "queue": queue, "screenshot_queue": screenshot_queue})
    csrf = CSRFConfig(
        secret=settings.security.secret_key,
        cookie_name=CSRF_COOKIE,
        header_name=CSRF_HEADER,
        cookie_secure=settings.security.secure_cookies,
        cookie_samesite="lax",
        # The admin apps carry their own CSRF protection; the JSON API is covered by its
        # own auth (bearer keys need none; cookie-authenticated calls are checked there).
        # Anchored: Litestar searches these patterns anywhere in the path, so a bare "/admin" or
        # "/api" also exempted /console/admin/... and /console/api-keys (found by a console test).
        exclude=[
            *(f"^{prefix}(/|$)" for prefix in (ADMIN_PATH, QUEUES_PATH, "/api", "/static")),
            "^/healthz$",
            "^/readyz$",
        ],
    )
    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            v1_router,
            widget_router,
            widget_loader,
            widget_module,
            demo_page,
            console_router,
            *admin_routes(SimpleNamespace(queue=queue), production=settings.security.secure_cookies),
            create_static_files_router(
                path="/static", directories=[ROOT / "static"], include_in_schema=False
            ),
        ],
        state=state,
        lifespan=[lifespan],
        csrf_config=csrf,
        template_config=TemplateConfig(
            directory=ROOT / "templates", engine=JinjaTemplateEngine, engine_callback=configure_templates
        ),
        exception_handlers={**exception_handlers, NotFoundException: _not_found},
        before_send=[console_headers_hook(settings)],
        request_max_body_size=1_000_000,
        request_class=JSONRequest,
        # The access log is not even installed when its lines would be dropped (LOG_LEVEL above
        # INFO: the benchmarks).
        middleware=[
            *([access_log_middleware] if settings.web_access_log and access_log.isEnabledFor(INFO) else []),
            CompleteAllowMiddleware,
        ],
        openapi_config=openapi_config(),
    )
    make_exact(app)
    return app
