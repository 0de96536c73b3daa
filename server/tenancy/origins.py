"""The one origin rule: which web pages may use a project's widget (REST widget API and sockets).

A project's ``allowed_origins`` holds entries of three forms:

| entry | allows |
|---|---|
| ``*`` | any page |
| ``https://shop.example`` (an origin) | pages of exactly that origin |
| ``https://*.shop.example`` (a wildcard) | pages of any subdomain of ``shop.example`` (any depth) |

A wildcard keeps its scheme and port, and does not match ``https://shop.example`` itself (list
that too). It needs a domain of two labels or more after ``*.`` (``https://*.example`` is refused).

Both entries and the request's ``Origin`` header are compared in their RFC 6454 serialisation:
scheme and host lower-case, an internationalised host in its ASCII (punycode) form, the scheme's
default port dropped, no path (one trailing ``/`` is tolerated), query, fragment or user info.
Only ``http`` and ``https`` origins exist for the widget. The opaque origin ``null`` (sandboxed
frames, ``file:`` pages) matches only ``*``.

A request without an ``Origin`` header is not a browser page (browsers send one on every
cross-origin request and every websocket handshake) and is allowed: the rule keeps other sites'
pages from using a project's widget key; it is not authentication (a non-browser client can send
any header it likes).

Before issue #9 the socket handshake compared raw strings while REST lower-cased, and only REST
knew ``*``: the widget of a ``*`` project could never go live.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

ANY = "*"
WILDCARD_PREFIX = "*."
DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidOrigin(ValueError):
    """Not an origin (or, for an allowed-origins entry, not ``*``, an origin or a wildcard)."""


@dataclass(frozen=True, slots=True)
class _Parts:
    scheme: str
    host: str
    port: int | None

    def serialise(self) -> str:
        return f"{self.scheme}://{self.host}" + (f":{self.port}" if self.port is not None else "")


def _parts(value: str, *, wildcard: bool) -> _Parts:
    text = value.strip()
    if text.endswith("/") and not text.endswith("//"):
        text = text[:-1]
    if not text.isascii() and "://" in text:
        scheme_text, rest = text.split("://", 1)
        text = f"{scheme_text}://{_ascii_host(rest)}"
    if any(c.isspace() for c in text):
        raise InvalidOrigin(f"{value[:100]!r} contains white space")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise InvalidOrigin(f"{value[:100]!r} is not an origin: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidOrigin(f"{value[:100]!r} is not an http or https origin like https://shop.example")
    if parts.path or parts.query or parts.fragment or "#" in text or "?" in text:
        raise InvalidOrigin(f"{value[:100]!r} has a path, query or fragment; an origin has none")
    if parts.username is not None or parts.password is not None:
        raise InvalidOrigin(f"{value[:100]!r} has user info; an origin has none")
    netloc = parts.netloc
    host_text = netloc.rsplit(":", 1)[0] if port is not None or netloc.endswith(":") else netloc
    host = host_text.lower()
    if not host or host in (".", "[]"):
        raise InvalidOrigin(f"{value[:100]!r} has no host")
    if host.startswith("*"):
        if not wildcard:
            raise InvalidOrigin(f"{value[:100]!r}: a wildcard is not an origin")
        suffix = host[len(WILDCARD_PREFIX) :]
        if not host.startswith(WILDCARD_PREFIX) or "*" in suffix or suffix.count(".") < 1:
            raise InvalidOrigin(
                f"{value[:100]!r}: a wildcard is '*.' before a domain of two labels or more, "
                "like https://*.shop.example"
            )
        _check_host(suffix, value)
    elif not host.startswith("["):
        _check_host(host, value)
    if port == DEFAULT_PORTS[scheme]:
        port = None
    return _Parts(scheme, host, port)


def _ascii_host(rest: str) -> str:
    """The host of ``rest`` (``host[:port]``) in IDNA ASCII form, as browsers send it."""
    host, colon, port = rest.rpartition(":") if rest.rpartition(":")[2].isdigit() else (rest, "", "")
    labels = []
    for label in host.split("."):
        try:
            labels.append(label if label.isascii() else label.encode("idna").decode("ascii"))
        except UnicodeError:
            raise InvalidOrigin(f"{host[:100]!r} is not a valid internationalised host name") from None
    return ".".join(labels) + colon + port


def _check_host(host: str, value: str) -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    if not set(host) <= allowed or host.startswith(".") or ".." in host:
        raise InvalidOrigin(f"{value[:100]!r} has an invalid host name")


def normalise_origin(value: str) -> str:
    """A request's ``Origin`` in its RFC 6454 serialisation, or :class:`InvalidOrigin`."""
    return _parts(value, wildcard=False).serialise()


def normalise_allowed(value: str) -> str:
    """An allowed-origins entry normalised: ``*``, an origin, or a wildcard; or :class:`InvalidOrigin`."""
    if value.strip() == ANY:
        return ANY
    return _parts(value, wildcard=True).serialise()


def normalise_allowed_list(values: Iterable[str]) -> list[str]:
    """Every entry normalised, duplicates dropped, order kept."""
    return list(dict.fromkeys(normalise_allowed(value) for value in values))


class AllowedOrigins:
    """A project's allowed origins, prepared once for many checks (the gateway caches these)."""

    __slots__ = ("_any", "_exact", "_wildcards")

    def __init__(self, entries: Iterable[str]) -> None:
        self._any = False
        self._exact: set[str] = set()
        self._wildcards: list[_Parts] = []
        for entry in entries:
            try:
                normalised = normalise_allowed(entry)
            except InvalidOrigin:
                continue  # stored before validation was strict: it can match nothing
            if normalised == ANY:
                self._any = True
            elif normalised.split("://", 1)[1].startswith(WILDCARD_PREFIX):
                self._wildcards.append(_parts(normalised, wildcard=True))
            else:
                self._exact.add(normalised)

    def allows(self, origin: str | None) -> bool:
        """Whether a request with this ``Origin`` header (None: no header) may use the widget."""
        if origin is None or self._any:
            return True
        try:
            parts = _parts(origin, wildcard=False)
        except InvalidOrigin:
            return False  # "null" and anything else that is not an origin
        if parts.serialise() in self._exact:
            return True
        return any(
            parts.scheme == pattern.scheme
            and parts.port == pattern.port
            and parts.host.endswith(pattern.host[1:])  # "*.shop.example" -> ".shop.example"
            for pattern in self._wildcards
        )


def origin_allowed(allowed_origins: Iterable[str], origin: str | None) -> bool:
    return AllowedOrigins(allowed_origins).allows(origin)
