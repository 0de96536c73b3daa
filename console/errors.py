"""Errors on console routes become pages, not JSON: 403 and 404 pages, the sign-in redirect.

For an htmx request the error page's main block replaces ``#main`` (``HX-Retarget``), so a
refused action shows its reason where the page was instead of failing silently.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.response import Redirect

from console.render import is_fragment_request, render
from server.errors import DomainError

log = logging.getLogger(__name__)

_TITLES = {
    400: "That request was not understood",
    403: "You cannot open this page",
    404: "Nothing here",
    405: "That is not allowed here",
    409: "That conflicts with the current state",
    422: "That was not accepted",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "A service is unavailable",
}


def error_page(request: Request[Any, Any, Any], status: int, message: str, code: str) -> Response[Any]:
    headers = {"HX-Retarget": "#main", "HX-Reswap": "innerHTML"} if is_fragment_request(request) else {}
    context = {"status": status, "title": _TITLES.get(status, "Error"), "message": message, "code": code}
    page = render(request, "console/error.html", context, status_code=status, headers=headers)
    return page


def sign_in_redirect(request: Request[Any, Any, Any], error: NotAuthorizedException) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = "/console/login?next=" + quote(target, safe="/")
    if request.headers.get("hx-request") == "true":
        return Response(content=b"", status_code=200, headers={"HX-Redirect": location})
    return Redirect(location, status_code=303)


def console_not_found(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    """For paths under /console that no route matches (installed app-wide by ``server/web.py``)."""
    return error_page(request, 404, "There is no page at this address.", "not_found")


def domain_error_page(request: Request[Any, Any, Any], error: DomainError) -> Response[Any]:
    return error_page(request, error.status, error.message, error.code)


def http_error_page(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    status = error.status_code
    if isinstance(error, PermissionDeniedException) and "CSRF" in str(error.detail):
        return error_page(
            request, 403, "The form was stale or not sent by this site; reload and retry.", "csrf_failed"
        )
    if isinstance(error, ValidationException):
        return error_page(request, 400, "Some values were not valid.", "invalid")
    return error_page(request, status, str(error.detail), "error")


def internal_error_page(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_page(request, 500, "The error was logged. Try again in a moment.", "internal_error")


console_exception_handlers: dict[Any, Any] = {
    NotAuthorizedException: sign_in_redirect,
    DomainError: domain_error_page,
    HTTPException: http_error_page,
    500: internal_error_page,
}
