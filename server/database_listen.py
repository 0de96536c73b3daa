"""LISTEN to PostgreSQL channels on a dedicated connection, reconnecting after any loss.

Three consumers keep something in step with the database this way: the web process's actor cache
(``server/tenancy/actor_cache.py``) and widget cache (``server/tenancy/widget_cache.py``), and the
realtime gateway's access watch (``server/realtime/access.py``). What they share is here:

- one connection of its own (``engine().get_new_connection()``: LISTEN cannot use the pool);
- ``on_connected`` runs after every (re)connection, once the channels are listened to: a consumer
  catches up there on whatever changed while nobody listened (notifications are not queued for
  a listener that was away);
- ``on_lost`` runs when the connection is lost or fails, before the next try;
- a silent network drop raises nothing, so the connection is probed every ``probe_seconds``.

Callbacks of a channel get the notification's payload and run in the event loop's thread (asyncpg
calls them synchronously): they must not block; they may start a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

import asyncpg

from server.database import engine

log = logging.getLogger(__name__)

OnNotify = Callable[[str], None]
"""Called with a notification's payload."""


async def _nothing() -> None:
    return None


class ChannelListener:
    """One LISTEN connection for ``channels``, kept up by a background task."""

    def __init__(
        self,
        name: str,
        channels: Mapping[str, OnNotify],
        *,
        on_connected: Callable[[], Awaitable[None]] = _nothing,
        on_lost: Callable[[], None] = lambda: None,
        retry_seconds: float = 1.0,
        probe_seconds: float = 10.0,
    ) -> None:
        self.name = name
        self.channels = dict(channels)
        self.on_connected = on_connected
        self.on_lost = on_lost
        self.retry_seconds = retry_seconds
        self.probe_seconds = probe_seconds
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.connected = False
        """True while the channels are listened to."""

    async def start(self, *, wait: float = 5.0) -> None:
        """Start listening, waiting (at most ``wait`` seconds) for the first connection."""
        self._task = asyncio.create_task(self._run(), name=self.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), wait)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.connected:
            self.connected = False
            self.on_lost()

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
                log.warning("%s lost its connection; reconnecting", self.name)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("%s failed (%s); reconnecting", self.name, error)
            finally:
                if self.connected:
                    self.connected = False
                    self.on_lost()
            await asyncio.sleep(self.retry_seconds)

    async def _listen_once(self) -> None:
        """Listen until the connection is lost (returns) or fails (raises)."""
        lost = asyncio.Event()
        connection: asyncpg.Connection = await engine().get_new_connection()
        try:
            connection.add_termination_listener(lambda _: lost.set())
            for channel, on_notify in self.channels.items():
                await connection.add_listener(channel, _payload_only(on_notify))
            self.connected = True
            await self.on_connected()
            self._connected.set()
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), self.probe_seconds)
                except TimeoutError:
                    await asyncio.wait_for(connection.fetchval("SELECT 1"), self.probe_seconds)
        finally:
            if not connection.is_closed():
                connection.terminate()


def _payload_only(on_notify: OnNotify) -> Callable[[object, int, str, str], None]:
    def listener(_connection: object, _pid: int, _channel: str, payload: str) -> None:
        on_notify(payload)

    return listener
