"""Typed settings, read from the environment once.

Every process calls :func:`get_settings` at start. A missing or malformed value raises
:class:`SettingsError` whose message is one line naming the variable; the entry points print
that line and exit with status 2 instead of a stack trace.

The embedded servers used by ``make dev`` and the tests are not a concern of this module: the
launcher (``python -m server dev``) starts them and hands their URLs to every process through
``DATABASE_URL`` and ``REDIS_URL``, so a process never knows whether its servers are embedded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlsplit

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_SECRET_KEY_LENGTH = 32


REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str
    """asyncpg DSN. A Unix socket directory goes in the ``host=`` query parameter."""
    pool_size: int


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str
    """redis:// , rediss:// or unix:// URL (Valkey is protocol-compatible) of one server;
    ``redis+sentinel://host:port[,host:port]/<service>`` for a Sentinel-managed primary;
    ``redis+cluster://host:port[,host:port]`` for a Redis Cluster (``server/redis_client.py``)."""
    max_connections: int
    ack_replicas: int = 0
    """``REDIS_ACK_REPLICAS``: a message is acknowledged only once this many replicas hold it
    (``WAIT``); 0 acknowledges once the primary holds it (see docs/scaling.md for the cost)."""
    ack_timeout_ms: int = 1000
    """``REDIS_ACK_TIMEOUT_MS``: how long the ack waits for the replicas before the send fails
    as unavailable (the client retries with the same ``client_msg_id``)."""


@dataclass(frozen=True, slots=True)
class ListenSettings:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class RealtimeListenSettings(ListenSettings):
    public_url: str
    """The gateway's URL as browsers reach it (the console's inbox and the widget connect there):
    ``REALTIME_PUBLIC_URL``, by default ``http://<REALTIME_HOST>:<REALTIME_PORT>``."""


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    secret_key: str
    """Signs realtime tokens and console sessions. At least 32 characters."""
    secure_cookies: bool
    """Mark cookies ``Secure``: set when Parley is served over HTTPS."""
    actor_cache_seconds: int = 30
    """How long a web process may reuse a resolved caller (0: never). Access changes empty the
    cache at once (``server/tenancy/actor_cache.py``); this only bounds an entry's age."""
    visitor_token_seconds: int = 900
    """How long a widget session's visitor token lives (``VISITOR_TOKEN_SECONDS``); the widget
    renews it before it expires. At most 900 (the deleted-project tombstone outlives it);
    short values are for tests of the renewal."""


@dataclass(frozen=True, slots=True)
class ScreenshotSettings:
    """The screenshot worker's renderer and the cache of its images (``server/screenshots/``)."""

    chromium_path: str = "/usr/bin/chromium"
    """The Chromium executable Playwright drives (Debian's package; Playwright downloads nothing)."""
    cache_seconds: int = 600
    """How long a rendered image is served from Redis before the page is rendered again."""
    timeout_ms: int = 10_000
    """Time limit of one render, from opening the page to the encoded image."""
    max_page_bytes: int = 8_000_000
    """Bytes one render may download (page and every subresource); past it the render fails."""
    max_image_bytes: int = 400_000
    """Largest image kept; the encoder lowers its quality until the image fits."""
    allow_loopback: bool = False
    """Development only: let renders reach 127.0.0.0/8 and ::1 (tests, the demo page). Logged at start."""
    concurrency: int = 2
    """Renders one screenshot worker runs at once (each is a Chromium context)."""
    snapshot_max_bytes: int = 900_000
    """Largest DOM snapshot a widget may send (UTF-8 bytes of the serialised page)."""


@dataclass(frozen=True, slots=True)
class MailSettings:
    """Outgoing e-mail (invitations, password resets), sent by the worker (``server/mail``)."""

    smtp_url: str | None
    """``smtp://user:pass@host:587`` (STARTTLS when offered) or ``smtps://…:465`` (TLS from the
    start): ``SMTP_URL``. None: mail goes to the development mailbox (``dev_mailbox()``)."""
    mail_from: str
    """``MAIL_FROM``, by default ``Parley <parley@localhost>``."""
    enabled: bool = True
    """``MAIL_ENABLED=false`` sends nothing at all (mail is dropped with a log line)."""
    public_url: str = "http://127.0.0.1:8000"
    """Where people reach the web process, for links in mail: ``PUBLIC_URL``, by default
    ``http://<WEB_HOST>:<WEB_PORT>``."""


@dataclass(frozen=True, slots=True)
class Settings:
    database: DatabaseSettings
    redis: RedisSettings
    queue_redis: RedisSettings
    """``QUEUE_REDIS_URL`` (default ``REDIS_URL``): where SAQ's queues live. SAQ 0.26 cannot run on
    a Redis Cluster (measured: docs/scaling.md), so with a cluster this names a separate server
    or a Sentinel-managed pair."""
    web: ListenSettings
    realtime: RealtimeListenSettings
    security: SecuritySettings
    log_level: str
    web_workers: int
    worker_concurrency: int = 10
    web_access_log: bool = True
    """One INFO line per web request (``WEB_ACCESS_LOG``, ``server/access_log.py``)."""
    """SAQ jobs one worker process runs at once (``WORKER_CONCURRENCY``)."""
    screenshots: ScreenshotSettings = field(default_factory=ScreenshotSettings)
    mail: MailSettings = MailSettings(smtp_url=None, mail_from="Parley <parley@localhost>")
    production: bool = False
    """``PARLEY_ENV=production``: refuse to start with settings that only suit development."""


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set")
    return value


def int_setting(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    """An integer variable within ``low..high``; unset means ``default``."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str:
    value = _require(env, name)
    scheme = urlsplit(value).scheme
    if scheme not in schemes:
        raise SettingsError(f"{name} must be a URL starting with one of {', '.join(schemes)}://")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    return int_setting(env, name, default, low=1, high=65535)


def _realtime_listen(env: Mapping[str, str]) -> RealtimeListenSettings:
    host = env.get("REALTIME_HOST", "127.0.0.1").strip() or "127.0.0.1"
    port = _port(env, "REALTIME_PORT", 8001)
    public_url = env.get("REALTIME_PUBLIC_URL", "").strip().rstrip("/")
    if public_url:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise SettingsError(
                "REALTIME_PUBLIC_URL must be an http:// or https:// origin, e.g. https://rt.example"
            )
    else:
        reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        public_url = f"http://{reachable}:{port}"
    return RealtimeListenSettings(host=host, port=port, public_url=public_url)


def _origin(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip().rstrip("/")
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise SettingsError(f"{name} must be an http:// or https:// URL, e.g. https://chat.example")
    return value


def _mail(env: Mapping[str, str], web: ListenSettings, *, production: bool) -> MailSettings:
    smtp_url = env.get("SMTP_URL", "").strip() or None
    if smtp_url is not None and urlsplit(smtp_url).scheme not in ("smtp", "smtps"):
        raise SettingsError("SMTP_URL must start with smtp:// or smtps://")
    enabled = _bool(env, "MAIL_ENABLED", True)
    if production and enabled and smtp_url is None:
        raise SettingsError(
            "SMTP_URL is not set (PARLEY_ENV=production; set MAIL_ENABLED=false to send no mail)"
        )
    reachable = "127.0.0.1" if web.host in ("0.0.0.0", "::") else web.host
    return MailSettings(
        smtp_url=smtp_url,
        mail_from=env.get("MAIL_FROM", "").strip() or "Parley <parley@localhost>",
        enabled=enabled,
        public_url=_origin(env, "PUBLIC_URL", f"http://{reachable}:{web.port}"),
    )


def load_database_settings(env: Mapping[str, str]) -> DatabaseSettings:
    return DatabaseSettings(
        url=_url(env, "DATABASE_URL", ("postgres", "postgresql")),
        pool_size=int_setting(env, "DATABASE_POOL_SIZE", 10, low=1, high=500),
    )


def load_redis_settings(env: Mapping[str, str]) -> RedisSettings:
    return RedisSettings(
        url=_url(env, "REDIS_URL", REDIS_SCHEMES),
        max_connections=int_setting(env, "REDIS_MAX_CONNECTIONS", 64, low=2, high=10_000),
        ack_replicas=int_setting(env, "REDIS_ACK_REPLICAS", 0, low=0, high=10),
        ack_timeout_ms=int_setting(env, "REDIS_ACK_TIMEOUT_MS", 1000, low=1, high=60_000),
    )


def load_screenshot_settings(env: Mapping[str, str]) -> ScreenshotSettings:
    defaults = ScreenshotSettings()
    return ScreenshotSettings(
        chromium_path=env.get("SCREENSHOT_CHROMIUM", "").strip() or defaults.chromium_path,
        cache_seconds=int_setting(
            env, "SCREENSHOT_CACHE_SECONDS", defaults.cache_seconds, low=1, high=86_400
        ),
        timeout_ms=int_setting(env, "SCREENSHOT_TIMEOUT_MS", defaults.timeout_ms, low=500, high=60_000),
        max_page_bytes=int_setting(
            env, "SCREENSHOT_MAX_PAGE_BYTES", defaults.max_page_bytes, low=10_000, high=100_000_000
        ),
        max_image_bytes=int_setting(
            env, "SCREENSHOT_MAX_IMAGE_BYTES", defaults.max_image_bytes, low=20_000, high=5_000_000
        ),
        allow_loopback=_bool(env, "SCREENSHOT_ALLOW_LOOPBACK", defaults.allow_loopback),
        concurrency=int_setting(env, "SCREENSHOT_CONCURRENCY", defaults.concurrency, low=1, high=16),
        snapshot_max_bytes=int_setting(
            env, "SCREENSHOT_SNAPSHOT_MAX_BYTES", defaults.snapshot_max_bytes, low=10_000, high=4_000_000
        ),
    )


def load_queue_redis_settings(env: Mapping[str, str], redis: RedisSettings) -> RedisSettings:
    if not env.get("QUEUE_REDIS_URL", "").strip():
        if urlsplit(redis.url).scheme == "redis+cluster":
            raise SettingsError(
                "REDIS_URL names a cluster: set QUEUE_REDIS_URL to a single or Sentinel-managed Redis "
                "for SAQ's queues (SAQ 0.26 does not run on a cluster)"
            )
        return redis
    url = _url(env, "QUEUE_REDIS_URL", tuple(scheme for scheme in REDIS_SCHEMES if scheme != "redis+cluster"))
    return RedisSettings(url=url, max_connections=redis.max_connections)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build settings from a mapping (the environment in production, a dict in tests)."""
    secret_key = _require(env, "SECRET_KEY")
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise SettingsError(f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters long")
    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in LOG_LEVELS:
        raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    environment = env.get("PARLEY_ENV", "development").strip().lower() or "development"
    if environment not in ("development", "production"):
        raise SettingsError(f"PARLEY_ENV must be development or production, got {environment!r}")
    web = ListenSettings(
        host=env.get("WEB_HOST", "127.0.0.1").strip() or "127.0.0.1",
        port=_port(env, "WEB_PORT", 8000),
    )
    redis = load_redis_settings(env)
    return Settings(
        database=load_database_settings(env),
        redis=redis,
        queue_redis=load_queue_redis_settings(env, redis),
        web=web,
        realtime=_realtime_listen(env),
        security=SecuritySettings(
            secret_key=secret_key,
            secure_cookies=_bool(env, "SECURE_COOKIES", False),
            actor_cache_seconds=int_setting(env, "ACTOR_CACHE_SECONDS", 30, low=0, high=3600),
            visitor_token_seconds=int_setting(env, "VISITOR_TOKEN_SECONDS", 900, low=5, high=900),
        ),
        log_level=log_level,
        web_workers=int_setting(env, "WEB_WORKERS", 1, low=1, high=64),
        worker_concurrency=int_setting(env, "WORKER_CONCURRENCY", 10, low=1, high=1000),
        web_access_log=_bool(env, "WEB_ACCESS_LOG", True),
        screenshots=load_screenshot_settings(env),
        mail=_mail(env, web, production=environment == "production"),
        production=environment == "production",
    )


@cache
def get_database_settings() -> DatabaseSettings:
    """Only the database part: what ``piccolo_conf`` needs, so migration tooling runs without the rest."""
    return load_database_settings(os.environ)


@cache
def get_settings() -> Settings:
    """The process's settings, read from ``os.environ`` on first use."""
    return load_settings(os.environ)


# Libraries whose INFO lines are per-job or per-request chatter: shown only at DEBUG.
CHATTY_LOGGERS = ("saq", "httpx", "httpcore")
"""Libraries that log a line per job or per request at INFO: WARNING unless LOG_LEVEL=DEBUG."""


def configure_logging(settings: Settings) -> None:
    """Our format and level for every process, replacing what a launcher set before us.

    ``force``: SAQ's command line configures the root logger (at WARNING) before our worker's
    start-up runs, which made a plain ``basicConfig`` a no-op and hid the worker's INFO lines.
    """
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
    chatty_level = logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(chatty_level)
