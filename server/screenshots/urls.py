"""What may be rendered: an ``http``/``https`` URL of one of the project's allowed origins.

The cache key is derived from the normalised URL, so spellings of one page share one render:
scheme and host lower-cased, the default port dropped, the fragment dropped (the server never
sees it), an empty path made ``/``. The query string is kept as sent: it can change the page.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit

from server.errors import ErrorCode, Invalid
from server.tenancy.origins import AllowedOrigins

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str) -> str:
    """The canonical spelling of ``url``, or :class:`Invalid` (``url_not_allowed``) for anything
    that is not an absolute ``http``/``https`` URL with a host."""
    if len(url) > MAX_URL_LENGTH:
        raise Invalid("The page's URL is too long to render.", code=ErrorCode.URL_NOT_ALLOWED)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise Invalid("The page's URL is malformed.", code=ErrorCode.URL_NOT_ALLOWED) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise Invalid(
            f"Only http and https pages are rendered, not {scheme or 'relative'} URLs.",
            code=ErrorCode.URL_NOT_ALLOWED,
        )
    if not host or parts.username is not None or parts.password is not None:
        raise Invalid("The page's URL needs a host and no credentials.", code=ErrorCode.URL_NOT_ALLOWED)
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise Invalid("The page's host name is not valid.", code=ErrorCode.URL_NOT_ALLOWED) from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def origin_of(normalised_url: str) -> str:
    """``scheme://host[:port]`` of a URL from :func:`normalise_url` (the form allowed origins use)."""
    parts = urlsplit(normalised_url)
    return f"{parts.scheme}://{parts.netloc}"


def check_allowed(normalised_url: str, allowed_origins: list[str]) -> None:
    """The URL's origin must pass the project's allowed origins (the one rule of
    :mod:`server.tenancy.origins`; the address guard still applies to every request the render makes)."""
    if not AllowedOrigins(allowed_origins).allows(origin_of(normalised_url)):
        raise Invalid(
            "The visitor's page is not on one of the project's allowed origins.",
            code=ErrorCode.ORIGIN_NOT_ALLOWED,
        )


def cache_digest(normalised_url: str, viewport: str) -> str:
    """The cache key's variable part: one image per (normalised URL, viewport)."""
    return hashlib.sha256(f"{viewport}\n{normalised_url}".encode()).hexdigest()[:32]
