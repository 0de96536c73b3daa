"""Domain errors, raised by services and mapped once to HTTP and socket error payloads.

Each carries a stable machine-readable ``code``; the HTTP mapping lives in ``server/api/errors.py``.
"""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, fields: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = dict(fields or {})


class Invalid(DomainError):
    """The request is well-formed but its values are not acceptable."""

    code = "invalid"
    status = 422


class Malformed(DomainError):
    """The request cannot be taken as it is written (a NUL character in text): 400, like bad JSON."""

    code = "invalid"
    status = 400


class NotFound(DomainError):
    """The object does not exist, or not in the caller's project (never say which)."""

    code = "not_found"
    status = 404


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401


class Conflict(DomainError):
    code = "conflict"
    status = 409


class RateLimited(DomainError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A backing service (Redis, PostgreSQL) is unreachable; the caller may retry."""

    code = "unavailable"
    status = 503
