"""Redis connections and key names.

Every key Parley writes is named here, under the ``parley:`` namespace, so operations can
find, expire and clear them (a deleted project's keys are cleared by a job).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

from server.settings import RedisSettings

PREFIX = "parley"


class _HiredisPacking:
    """Pack commands with hiredis (C) instead of redis-py's asyncio Python packer.

    The Python packer costs about 6 µs per argument: a 50-key MGET spends more time being
    packed than travelling. Command names with a space ("CONFIG GET") are split like redis-py does.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:
            args = (*args[0].split(), *args[1:])
        return [hiredis.pack_command(args)]

    def pack_commands(self, commands: Any) -> list[bytes]:
        return [b"".join(self.pack_command(*command)[0] for command in commands)]


class FastConnection(_HiredisPacking, Connection):
    pass


class FastSSLConnection(_HiredisPacking, SSLConnection):
    pass


class FastUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


_CONNECTION_CLASSES = {"redis": FastConnection, "rediss": FastSSLConnection, "unix": FastUnixConnection}


def make_redis(settings: RedisSettings, *, max_connections: int | None = None, timeout: float = 5.0) -> Redis:
    """A client on a blocking pool: under a burst callers wait for a connection instead of failing."""
    pool = BlockingConnectionPool.from_url(
        settings.url,
        max_connections=max_connections or settings.max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
    # Set after from_url: for unix:// and rediss:// URLs redis-py's URL parsing picks the connection
    # class itself and would override a connection_class keyword argument.
    pool.connection_class = _CONNECTION_CLASSES[urlsplit(settings.url).scheme]
    return Redis(connection_pool=pool)


class Keys:
    """Key names. Methods return the full key; nothing else builds key strings."""

    @staticmethod
    def session(token_hash: str) -> str:
        return f"{PREFIX}:session:{token_hash}"

    @staticmethod
    def user_sessions(user_id: int) -> str:
        """Set of a user's session token hashes, so deactivation ends them all."""
        return f"{PREFIX}:user-sessions:{user_id}"

    @staticmethod
    def worker_heartbeat() -> str:
        return f"{PREFIX}:worker:heartbeat"

    @staticmethod
    def rate_limit(scope: str, subject: str) -> str:
        return f"{PREFIX}:ratelimit:{scope}:{subject}"

    @staticmethod
    def visitor_location(project_id: int, visitor_uid: str) -> str:
        """JSON ``{"url", "title", "at"}`` of the page a visitor is on; set on ``navigate``, with a TTL."""
        return f"{PREFIX}:p:{project_id}:visitor:{visitor_uid}:location"

    @staticmethod
    def visitor_trail(project_id: int, visitor_uid: str) -> str:
        """List of the visitor's last 20 navigations, newest first: JSON ``{"url", "title", "at"}``."""
        return f"{PREFIX}:p:{project_id}:visitor:{visitor_uid}:trail"

    @staticmethod
    def visitor_device(project_id: int, visitor_uid: str) -> str:
        """JSON :class:`server.chat.device.VisitorDevice` from the widget's ``visitor:info``, with a TTL."""
        return f"{PREFIX}:p:{project_id}:visitor:{visitor_uid}:device"

    @staticmethod
    def visitor_presence(project_id: int) -> str:
        """Sorted set: member = visitor uid, score = Unix time until which the visitor counts as online.

        The gateway raises the score on connect and on each heartbeat; a member whose score is in
        the past is offline (its node stopped refreshing it). One ZMSCORE reads a whole page.
        """
        return f"{PREFIX}:p:{project_id}:presence:visitors"

    @staticmethod
    def agent_presence(project_id: int) -> str:
        """Sorted set like :meth:`visitor_presence`, for the project's agents (member = user id)."""
        return f"{PREFIX}:p:{project_id}:presence:agents"

    @staticmethod
    def password_reset(token_hash: str) -> str:
        """A one-use password-reset link: value ``<user id>:<link generation>``, with its expiry as TTL."""
        return f"{PREFIX}:password-reset:{token_hash}"

    DEV_MAILBOX = f"{PREFIX}:dev-mailbox"
    """List of the last mails "sent" without an SMTP server (development), newest first, as JSON."""

    @staticmethod
    def deleted_project(project_id: int) -> str:
        """Tombstone of a deleted project, kept while its visitors' tokens may still be valid.

        Outside ``project_pattern`` on purpose: the job that clears a deleted project's keys must
        not remove it.
        """
        return f"{PREFIX}:deleted-project:{project_id}"

    @staticmethod
    def project_by_public_key(public_key: str) -> str:
        """Application cache (role 5): the widget's project lookup by public key."""
        return f"{PREFIX}:cache:project-key:{public_key}"

    # The send path's mailboxes (server/chat/mailbox.py).
    DIRTY_MAILBOXES = f"{PREFIX}:mailboxes"
    """Sorted set of non-empty mailboxes, scored by when they were last written."""
    DEAD_LETTERS = f"{PREFIX}:mailbox-dead"
    """Messages that can never be stored (their conversation or project was deleted), with why."""

    @staticmethod
    def mailbox(project_id: int, stream: str) -> str:
        """List of one sender's accepted messages waiting for the worker, in arrival order."""
        return f"{PREFIX}:p:{project_id}:mailbox:{stream}"

    @staticmethod
    def drain_mailboxes(shard: int) -> str:
        """Sorted set of one drain shard's non-empty mailboxes (every project's): what its drain reads."""
        return f"{PREFIX}:drain:{shard}:mailboxes"

    @staticmethod
    def drain_token(shard: int) -> str:
        """Counter of appends to one drain shard since its drain job was queued; absent: no drain due."""
        return f"{PREFIX}:drain:{shard}:token"

    @staticmethod
    def drain_wake(shard: int) -> str:
        """List of at most one item, pushed by appends while a drain is due: wakes a lingering drain."""
        return f"{PREFIX}:drain:{shard}:wake"

    # Presence (server/realtime/presence.py).
    ALL_SOCKETS = f"{PREFIX}:presence:sockets"
    """Sorted set of every live socket (subject|node|socket), scored by heartbeat expiry."""
    PRESENCE_PENDING = f"{PREFIX}:presence:pending"
    """Sorted set of subjects whose offline grace period is running, scored by when it ends."""

    @staticmethod
    def presence_sockets(project_id: int, kind: str, subject_id: str | int) -> str:
        """Sorted set of one visitor's or agent's sockets, scored by heartbeat expiry."""
        return f"{PREFIX}:p:{project_id}:presence:{kind}:{subject_id}:sockets"

    @staticmethod
    def presence_status(project_id: int, kind: str, subject_id: str | int) -> str:
        """online / away of one visitor or agent."""
        return f"{PREFIX}:p:{project_id}:presence:{kind}:{subject_id}:status"

    AGENT_ACTIVITY = f"{PREFIX}:presence:agent-activity"
    """Sorted set of agents (``project|agent|user``) scored by their last input in any tab (Unix s);
    the presence sweeper turns those idle too long to away and drops them until they act again."""

    @staticmethod
    def agent_presence_choice(user_id: int) -> str:
        """The status an agent chose (online / away / offline), applied to every project and tab."""
        return f"{PREFIX}:agent:{user_id}:presence-choice"

    @staticmethod
    def realtime_node(node_id: str) -> str:
        """Channel of one realtime process, for events aimed at its sockets."""
        return f"{PREFIX}:rt:node:{node_id}"

    @staticmethod
    def project_events(project_id: int) -> str:
        """Pub/sub channel of every event of one project (outbox relay -> realtime nodes)."""
        return f"{PREFIX}:events:p:{project_id}"

    # Screenshots (server/screenshots/): the application cache (role 5) and the renders in flight.
    # All of one project, so the project's clean-up clears them and one script may touch them together.
    @staticmethod
    def screenshot_image(project_id: int, digest: str) -> str:
        """The encoded image of one (normalised URL, viewport), with the cache's TTL."""
        return f"{PREFIX}:p:{project_id}:screenshot:image:{digest}"

    @staticmethod
    def screenshot_render(project_id: int, digest: str) -> str:
        """Single-flight lock of one render (``SET NX``, short expiry): ``queued`` or ``rendering``."""
        return f"{PREFIX}:p:{project_id}:screenshot:render:{digest}"

    @staticmethod
    def screenshot_waiters(project_id: int, digest: str) -> str:
        """Set of the handles waiting for the render in flight: each gets its result."""
        return f"{PREFIX}:p:{project_id}:screenshot:waiters:{digest}"

    @staticmethod
    def screenshot_outcome(project_id: int, render_id: str) -> str:
        """How one render ended (JSON ``{"state", "code"?, "message"?}``), kept as long as its handles."""
        return f"{PREFIX}:p:{project_id}:screenshot:outcome:{render_id}"

    @staticmethod
    def screenshot_handle(project_id: int, handle: str) -> str:
        """Hash of one request for a screenshot: ``info`` (JSON) and the ``render`` it joined."""
        return f"{PREFIX}:p:{project_id}:screenshot:handle:{handle}"

    SCREENSHOT_RENDERERS = f"{PREFIX}:screenshots:renderers"
    """Hash: screenshot worker id -> JSON ``{"ok", "reason", "until"}``: can it render, said lately."""

    @staticmethod
    def project_pattern(project_id: int) -> str:
        """Glob matching every key that belongs to one project."""
        return f"{PREFIX}:p:{project_id}:*"
