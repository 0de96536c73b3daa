"""The web process's Redis and PostgreSQL outages, each logged as three kinds of line.

While Redis is down every request that needs it fails with a 503; the web process used to log a
warning per failed request (issue #9: hundreds in a two-second outage). A failed request now
reports here instead: :class:`server.outage.Outage` logs once when a service goes down, at most
one line per 10 s with a count while it stays down, and once when it is back. "Back" is decided
by a probe that asks the service once a second while its outage lasts (a request that happens not
to touch it proves nothing), so the end is logged even when no request comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from server.outage import Outage

log = logging.getLogger("parley.backing")

PROBE_SECONDS = 1.0
REDIS = "Redis"
POSTGRESQL = "PostgreSQL"


class BackingOutages:
    def __init__(
        self, probes: dict[str, Callable[[], Awaitable[object]]], *, probe_seconds: float = PROBE_SECONDS
    ) -> None:
        self._probes = probes
        self._probe_seconds = probe_seconds
        self._outages = {name: Outage(log, name) for name in probes}
        self._watching: dict[str, asyncio.Task[None]] = {}

    @staticmethod
    def service_of(error: BaseException) -> str:
        """Which service an error of a request came from: redis-py's errors are Redis's, the rest
        (asyncpg's, and the ``OSError`` of a socket that does not connect) PostgreSQL's."""
        return REDIS if isinstance(error, RedisError) else POSTGRESQL

    def failed(self, error: BaseException) -> None:
        """A request failed because a service is unreachable: count it, and watch for the end."""
        name = self.service_of(error)
        self._outages[name].failed(error)
        watching = self._watching.get(name)
        if watching is None or watching.done():
            self._watching[name] = asyncio.get_running_loop().create_task(self._watch(name))

    def down(self, name: str) -> bool:
        return self._outages[name].down

    async def _watch(self, name: str) -> None:
        probe = self._probes[name]
        while True:
            await asyncio.sleep(self._probe_seconds)
            with contextlib.suppress(Exception):  # still down, whatever it says: keep asking
                await probe()
                self._outages[name].recovered()
                return

    async def aclose(self) -> None:
        for task in self._watching.values():
            task.cancel()
        for task in self._watching.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._watching.clear()
