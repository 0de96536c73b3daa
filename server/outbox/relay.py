"""Publishing outbox events on Redis pub/sub: the relay (safety net) and the writer's fast path.

:class:`FastPublisher` is the fast path: a writer that has just committed events publishes them
at once from memory (it knows their ids and contents) and marks them published in the background.
Such a writer records its events without NOTIFY (``record_events(..., notify=False)``).

:class:`OutboxRelay` runs in the worker node (started by ``tasks/worker.py``) and guarantees
delivery. It publishes the rows named by ``NOTIFY parley_outbox`` (sent at the commit of every
other transaction that recorded events) at once, read on a dedicated asyncpg connection, and every
``sweep_interval`` seconds sweeps every unpublished row older than ``claim_seconds``: the rows a
fast-path writer could not publish (it crashed between commit and publish) and any notification
missed (listener reconnecting, PostgreSQL restarted). Younger rows are left to their writer, so
the two do not both publish a row in the usual case.

Each pass locks a batch of rows in id order with ``FOR UPDATE SKIP LOCKED``: several relays (one
per worker process) never publish the same row twice. A row can still be published twice when a
process dies after publishing and before its mark commits, or when a fast-path mark is slower than
``claim_seconds``. Delivery is therefore at-least-once; consumers drop duplicates by
``(conversation_id, seq)`` or by the envelope ``id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis

from server.database import engine
from server.outbox.envelope import Envelope, encode, project_channel
from server.outbox.record import NOTIFY_CHANNEL, StoredBody
from server.redis_client import publish_all

log = logging.getLogger(__name__)

_body_decoder = msgspec.json.Decoder(StoredBody)

_LOCK_ALL = """
SELECT id, project, type, payload::text AS payload FROM outbox_event
WHERE published_at IS NULL AND created_at <= now() - make_interval(secs => $2)
ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_LOCK_SOME = """
SELECT id, project, type, payload::text AS payload FROM outbox_event
WHERE published_at IS NULL AND id = ANY($2::bigint[]) ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_MARK = "UPDATE outbox_event SET published_at = now() WHERE id = ANY($1::bigint[])"
_MARK_FAST = f"{_MARK} AND published_at IS NULL"


def envelope_of(row: Any) -> Envelope:
    body = _body_decoder.decode(row["payload"])
    return Envelope(
        type=row["type"],
        project_id=row["project"],
        at=body.at,
        data=body.data,
        id=row["id"],
        conversation_id=body.conversation_id,
        seq=body.seq,
    )


async def publish_pending(
    publisher: Redis, *, ids: Sequence[int] | None = None, limit: int = 500, older_than: float = 0.0
) -> int:
    """Publish up to ``limit`` unpublished events in id order; returns how many.

    Only ``ids`` when given, else every unpublished row created at least ``older_than`` seconds
    ago. One short transaction: lock the rows (skipping rows another relay holds), publish them in
    one pipeline on ``publisher``, mark them published, commit. If publishing fails nothing is
    marked and the rows stay for the next pass.
    """
    db = engine()
    async with db.transaction() as transaction:
        connection = transaction.connection
        if ids is None:
            rows = await connection.fetch(_LOCK_ALL, limit, older_than)
        else:
            if not ids:
                return 0
            rows = await connection.fetch(_LOCK_SOME, limit, list(ids))
        if not rows:
            return 0
        await publish_all(
            publisher, [(project_channel(row["project"]), encode(envelope_of(row))) for row in rows]
        )
        await connection.execute(_MARK, [row["id"] for row in rows])
    return len(rows)


class FastPublisher:
    """Publishes a writer's events right after its commit; marks them published in the background.

    The marks leave the publishing path: one ``UPDATE`` (a commit of its own) every
    ``mark_interval`` seconds at most, for everything published meanwhile; at 200 messages/s a
    mark per round would double PostgreSQL's commits. A mark that fails (PostgreSQL away) is
    retried; a row never marked is published once more by the relay after its claim period
    (keep ``mark_interval`` well below it), which at-least-once allows.
    """

    MAX_UNMARKED = 100_000

    def __init__(self, publisher: Redis, *, mark_interval: float = 0.1) -> None:
        self.publisher = publisher
        self.mark_interval = mark_interval
        self.published = 0
        self._unmarked: list[int] = []
        self._marker: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    async def publish(self, envelopes: Sequence[Envelope]) -> int:
        """Publish committed events (ids set) in the given order, in one pipeline; returns how many."""
        if not envelopes:
            return 0
        await publish_all(
            self.publisher,
            [(project_channel(envelope.project_id), encode(envelope)) for envelope in envelopes],
        )
        self.published += len(envelopes)
        self._unmarked.extend(envelope.id for envelope in envelopes if envelope.id is not None)
        if self._marker is None:
            self._marker = asyncio.create_task(self._mark_all(), name="outbox-marks")
        return len(envelopes)

    async def aclose(self) -> None:
        """Wait (a little) for the marks in flight; what is left is the relay's to publish again."""
        self._closing.set()  # no more waiting between marks
        if self._marker is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._marker), timeout=5)
            if self._marker is not None:
                self._marker.cancel()

    async def _mark_all(self) -> None:
        failures = 0
        try:
            while self._unmarked:
                await self._pause(self.mark_interval)
                ids, self._unmarked = self._unmarked, []
                try:
                    await _execute(_MARK_FAST, ids)
                    failures = 0
                except Exception as error:  # PostgreSQL away: keep the ids, try again
                    failures += 1
                    self._unmarked = (ids + self._unmarked)[-self.MAX_UNMARKED :]
                    log.warning(
                        "cannot mark %d events published (%s): %s", len(ids), type(error).__name__, error
                    )
                    if self._closing.is_set():
                        return  # stopping: the relay publishes them again later
                    await self._pause(min(0.1 * 2**failures, 5.0))
        finally:
            self._marker = None

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)


async def _execute(sql: str, *args: object) -> None:
    """One statement in its own implicit transaction (no BEGIN/COMMIT round trips)."""
    pool = engine().pool
    if pool is None:
        async with engine().transaction() as transaction:
            await transaction.connection.execute(sql, *args)
        return
    async with pool.acquire() as connection:
        await connection.execute(sql, *args)


class OutboxRelay:
    """One relay loop. ``start()`` runs it as a background task; ``stop()`` ends it.

    ``listen=False`` turns the NOTIFY wake-up off, leaving only the periodic sweep (the naive
    polling relay the benchmark compares with). ``claim_seconds`` is how long the sweep leaves a
    new row to a fast-path writer (0 when no writer publishes its own events).
    """

    def __init__(
        self,
        publisher: Redis,
        *,
        sweep_interval: float = 1.0,
        batch_size: int = 500,
        listen: bool = True,
        claim_seconds: float = 0.0,
    ) -> None:
        self.publisher = publisher
        self.sweep_interval = sweep_interval
        self.batch_size = batch_size
        self.listen = listen
        self.claim_seconds = claim_seconds
        self._notified: set[int] = set()
        self._notified_all = False
        self.published = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    @property
    def listening(self) -> bool:
        """True once ``LISTEN parley_outbox`` is registered (asyncpg's ``add_listener`` returned)."""
        return self._listener is not None and not self._listener.is_closed()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            # A pass stuck on an unreachable PostgreSQL must not hold the process up.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout=5)
        await self._close_listener()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if self.listen:
                await self._ensure_listener()
            try:
                self._wake.clear()
                # A pass runs in a task of its own: when PostgreSQL drops a connection mid-
                # transaction, Piccolo 1.38 leaves its current-transaction contextvar pointing at
                # the released connection, which would break every later pass of this loop.
                await asyncio.create_task(self._drain())
                failures = 0
            except Exception as error:  # PostgreSQL or Redis away: keep the loop, back off
                failures += 1
                log.warning("outbox relay pass failed (%s): %s", type(error).__name__, error)
                await self._sleep(min(0.1 * 2**failures, 5.0))
                continue
            await self._sleep(self.sweep_interval)

    async def _drain(self) -> None:
        notified, self._notified = sorted(self._notified), set()
        everything, self._notified_all = self._notified_all, False
        try:
            for start in range(0, len(notified), self.batch_size):
                chunk = notified[start : start + self.batch_size]
                self.published += await publish_pending(self.publisher, ids=chunk, limit=self.batch_size)
        except Exception:
            self._notified.update(notified)  # not lost: the next pass tries them again
            raise
        older_than = 0.0 if everything else self.claim_seconds
        while (
            count := await publish_pending(self.publisher, limit=self.batch_size, older_than=older_than)
        ) > 0:
            self.published += count
            if count < self.batch_size:
                break

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _ensure_listener(self) -> None:
        if self.listening:
            return
        await self._close_listener()
        try:
            connection = await engine().get_new_connection()
            await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
        except Exception as error:
            log.warning("outbox relay cannot LISTEN yet (%s): %s", type(error).__name__, error)
            return
        self._listener = connection
        self._wake.set()  # anything committed while we were not listening

    def _on_notify(self, connection: object, pid: object, channel: object, payload: object) -> None:
        if isinstance(payload, str) and payload:
            self._notified.update(int(event_id) for event_id in payload.split(","))
        else:  # a writer with too many ids to list (or an older one): look at every row
            self._notified_all = True
        self._wake.set()

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), timeout=2)
