"""Redis connections and key names.

Every key Parley writes is named here, under the ``parley:`` namespace, so operations can
find, expire and clear them (a deleted project's keys are cleared by a job).
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from server.settings import RedisSettings

PREFIX = "parley"


def make_redis(settings: RedisSettings, *, max_connections: int | None = None, timeout: float = 5.0) -> Redis:
    """A client on a blocking pool: under a burst callers wait for a connection instead of failing."""
    pool = BlockingConnectionPool.from_url(
        settings.url,
        max_connections=max_connections or settings.max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
    )
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
    def project_pattern(project_id: int) -> str:
        """Glob matching every key that belongs to one project."""
        return f"{PREFIX}:p:{project_id}:*"
