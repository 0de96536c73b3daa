"""One mapping from errors to JSON bodies: ``{"code", "message", "fields"?}``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import asyncpg
import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.errors import DomainError, ErrorCode, RateLimited
from server.web_state import outages_of

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.INVALID,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.UNAVAILABLE,
}


class ErrorBody(msgspec.Struct):
    """Every error of the API, whatever its status."""

    code: str
    """Stable and machine-readable, e.g. ``not_found``, ``invalid``, ``rate_limited``."""
    message: str
    """For people; may change."""
    fields: dict[str, str] | None = None
    """For validation errors: which field, and what is wrong with it."""


_DESCRIPTIONS = {
    400: "Malformed request: bad JSON, unknown field, wrong type or value out of range",
    401: "No valid credentials",
    403: "Authenticated, but not allowed (role, read-only key, CSRF)",
    404: "No such object in this project (ids of other projects are 404 too)",
    409: "Conflicts with the current state",
    413: "Body too large",
    422: "Well-formed but not acceptable values",
    429: "Rate limited; see Retry-After",
    503: "A backing service is unavailable; retry (with the same client_msg_id for messages)",
}
ERROR_RESPONSES = {
    status: ResponseSpec(data_container=ErrorBody, description=description)
    for status, description in _DESCRIPTIONS.items()
}


def document_errors(handlers: Iterable[Any]) -> list[Any]:
    """Declare the error body on every handler, so the OpenAPI schema matches what we send."""
    for handler in handlers:
        handler.responses = {**ERROR_RESPONSES, **(handler.responses or {})}
    return list(handlers)


def _body(code: ErrorCode, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return body


def domain_error_handler(request: Request[Any, Any, Any], error: DomainError) -> Response[dict[str, Any]]:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
    return Response(
        _body(error.code, error.message, error.fields or None),
        status_code=error.status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _validation_fields(error: ValidationException) -> dict[str, str]:
    fields: dict[str, str] = {}
    extra = error.extra if isinstance(error.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            key = str(item.get("key") or item.get("source") or "body")
            message = str(item.get("message", "invalid"))
            if message == f"'{key}'":  # a KeyError's text: the value is missing altogether
                message = "required" if key != "data" else "a JSON body is required"
            fields["body" if key == "data" else key] = message
    return fields


def http_error_handler(request: Request[Any, Any, Any], error: HTTPException) -> Response[dict[str, Any]]:
    status = error.status_code
    if isinstance(error, ValidationException):
        fields = _validation_fields(error)
        return Response(
            _body(ErrorCode.INVALID, "The request is not valid.", fields or None),
            status_code=400 if status == 400 else status,
            media_type=MediaType.JSON,
        )
    code = _HTTP_CODES.get(status) or (ErrorCode.BAD_REQUEST if status < 500 else ErrorCode.INTERNAL_ERROR)
    if isinstance(error, NotAuthorizedException):
        code = ErrorCode.UNAUTHORIZED
    headers = dict(error.headers or {})
    if status == 413:
        # The rest of the body is never read: say the connection ends, so a client still
        # sending gets this answer instead of a reset.
        headers["Connection"] = "close"
    return Response(
        _body(code, str(error.detail)), status_code=status, media_type=MediaType.JSON, headers=headers or None
    )


def internal_error_handler(request: Request[Any, Any, Any], error: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(
        _body(ErrorCode.INTERNAL_ERROR, "Something went wrong on our side."),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        media_type=MediaType.JSON,
    )


def text_encoding_error_handler(
    request: Request[Any, Any, Any], error: Exception
) -> Response[dict[str, Any]]:
    """PostgreSQL refused a string (a NUL character): the client's input, so a 400, never a 500."""
    return Response(
        _body(ErrorCode.INVALID, "Text must not contain NUL characters."),
        status_code=400,
        media_type=MediaType.JSON,
    )


def backing_service_error_handler(
    request: Request[Any, Any, Any], error: Exception
) -> Response[dict[str, Any]]:
    """PostgreSQL or Redis cannot be reached: the client may retry, so 503, not 500.

    Logged as an outage (when it starts, then at most every 10 s, then when it ends), never a
    line per failed request.
    """
    outages = outages_of(request.app)
    if outages is not None:
        outages.failed(error)
    else:  # before the lifespan made the outage log (start-up): nothing to throttle yet
        log.warning("backing service unreachable on %s %s: %r", request.method, request.url.path, error)
    return Response(
        _body(ErrorCode.UNAVAILABLE, "A backing service is unavailable; retry shortly."),
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        media_type=MediaType.JSON,
        headers={"Retry-After": "1"},
    )


BACKING_SERVICE_DOWN: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    OSError,  # a socket that cannot connect (ConnectionRefusedError, a missing Unix socket)
)

exception_handlers: dict[Any, Any] = {
    **dict.fromkeys(BACKING_SERVICE_DOWN, backing_service_error_handler),
    asyncpg.exceptions.CharacterNotInRepertoireError: text_encoding_error_handler,
    asyncpg.exceptions.UntranslatableCharacterError: text_encoding_error_handler,
    DomainError: domain_error_handler,
    HTTPException: http_error_handler,
    HTTP_500_INTERNAL_SERVER_ERROR: internal_error_handler,
}
