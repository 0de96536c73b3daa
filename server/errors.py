"""Domain errors, raised by services and mapped once to HTTP and socket error payloads.

Each carries a stable machine-readable ``code``; the HTTP mapping lives in ``server/api/errors.py``.
:class:`ErrorCode` is the one list of every code the REST API, the console's JSON answers and the
socket gateway can send: code names a member, never a string of its own, and docs/api.md and
docs/protocol.md list every member (``tests/test_error_codes.py`` checks all three ways).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class ErrorCode(enum.StrEnum):
    """Every machine-readable error code Parley sends (``{"code": ...}``), grouped by where it arises."""

    # The generic codes of the domain errors below and of HTTP statuses.
    INVALID = "invalid"
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    UNAVAILABLE = "unavailable"
    # Authentication and access.
    BAD_AUTHORIZATION_HEADER = "bad_authorization_header"
    INVALID_API_KEY = "invalid_api_key"
    INVALID_CREDENTIALS = "invalid_credentials"
    INVALID_TOKEN = "invalid_token"  # noqa: S105  (a code, not a secret)
    CSRF_FAILED = "csrf_failed"
    READ_ONLY_KEY = "read_only_key"
    TOO_MANY_KEYS = "too_many_keys"
    # Accounts, projects, members, invitations, canned replies.
    EMAIL_TAKEN = "email_taken"
    CANNOT_DEMOTE_SELF = "cannot_demote_self"
    CANNOT_DEACTIVATE_SELF = "cannot_deactivate_self"
    LAST_MANAGER = "last_manager"
    ALREADY_MEMBER = "already_member"
    ACCOUNT_EXISTS = "account_exists"
    INVITATION_FOR_ANOTHER_ADDRESS = "invitation_for_another_address"
    LINK_INVALID = "link_invalid"
    SHORTCUT_TAKEN = "shortcut_taken"
    EMPTY_UPDATE = "empty_update"
    # Conversations and messages.
    EMPTY_BODY = "empty_body"
    BODY_TOO_LONG = "body_too_long"
    BAD_CURSOR = "bad_cursor"
    # The widget.
    UNKNOWN_WIDGET_KEY = "unknown_widget_key"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    IDENTITY_INVALID = "identity_invalid"
    IDENTITY_EXPIRED = "identity_expired"
    IDENTITY_REQUIRED = "identity_required"
    # Screenshots: refused at once, or the render failed.
    URL_NOT_ALLOWED = "url_not_allowed"
    ADDRESS_NOT_ALLOWED = "address_not_allowed"
    NO_CURRENT_PAGE = "no_current_page"
    SCREENSHOT_EXPIRED = "screenshot_expired"
    SCREENSHOTS_UNAVAILABLE = "screenshots_unavailable"
    RENDER_TIMEOUT = "render_timeout"
    PAGE_UNREACHABLE = "page_unreachable"
    PAGE_TOO_LARGE = "page_too_large"
    IMAGE_TOO_LARGE = "image_too_large"
    RENDER_LOST = "render_lost"
    RENDER_ERROR = "render_error"
    SNAPSHOTS_DISABLED = "snapshots_disabled"
    VISITOR_OFFLINE = "visitor_offline"
    SNAPSHOT_NOT_REQUESTED = "snapshot_not_requested"
    SNAPSHOT_NOT_RECEIVED = "snapshot_not_received"
    SNAPSHOT_TOO_LARGE = "snapshot_too_large"
    SNAPSHOT_FAILED = "snapshot_failed"
    # The socket: namespace refusals (``connect_error``).
    MISSING_TOKEN = "missing_token"  # noqa: S105  (a code, not a secret)
    TOKEN_EXPIRED = "token_expired"  # noqa: S105  (a code, not a secret)
    WRONG_TOKEN_KIND = "wrong_token_kind"  # noqa: S105  (a code, not a secret)
    WRONG_PROJECT = "wrong_project"
    FORBIDDEN_PROJECT = "forbidden_project"
    INVALID_AUTH = "invalid_auth"
    INVALID_NAMESPACE = "invalid_namespace"
    ALREADY_CONNECTED = "already_connected"
    # The socket: event errors (error acks and ``server:error``).
    INVALID_PAYLOAD = "invalid_payload"
    UNKNOWN_EVENT = "unknown_event"
    NOT_CONNECTED = "not_connected"
    TIMEOUT = "timeout"
    INTERNAL = "internal"
    # The socket: access lost while connected (``access:revoked``).
    MEMBER_REMOVED = "member_removed"
    USER_DEACTIVATED = "user_deactivated"
    API_KEY_REVOKED = "api_key_revoked"
    PROJECT_DELETED = "project_deleted"


class DomainError(Exception):
    code: ErrorCode = ErrorCode.INVALID
    status = 400

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, fields: Mapping[str, str] | None = None
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = dict(fields or {})


class Invalid(DomainError):
    """The request is well-formed but its values are not acceptable."""

    code = ErrorCode.INVALID
    status = 422


class Malformed(DomainError):
    """The request cannot be taken as it is written (a NUL character in text): 400, like bad JSON."""

    code = ErrorCode.INVALID
    status = 400


class NotFound(DomainError):
    """The object does not exist, or not in the caller's project (never say which)."""

    code = ErrorCode.NOT_FOUND
    status = 404


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN
    status = 403


class Unauthorized(DomainError):
    code = ErrorCode.UNAUTHORIZED
    status = 401


class Conflict(DomainError):
    code = ErrorCode.CONFLICT
    status = 409


class RateLimited(DomainError):
    code = ErrorCode.RATE_LIMITED
    status = 429

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A backing service (Redis, PostgreSQL) is unreachable; the caller may retry."""

    code = ErrorCode.UNAVAILABLE
    status = 503
