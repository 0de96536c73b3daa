"""The outbox relay: publishes unpublished outbox events on Redis pub/sub, then marks them published.

It runs in the worker node (started by ``tasks/worker.py``). It wakes on ``NOTIFY parley_outbox``
(sent at the commit of every transaction that recorded events), read on a dedicated asyncpg
connection, and also sweeps every ``sweep_interval`` seconds in case a notification was missed
(listener reconnecting, PostgreSQL restarted, a worker killed between commit and publish).

Each pass locks a batch of rows in id order with ``FOR UPDATE SKIP LOCKED``: several relays (one
per worker process) and the worker's own after-commit fast path (:func:`publish_pending` with
``ids``) never publish the same row twice, except when a process dies after publishing and before
its mark commits. Delivery is therefore at-least-once; consumers drop duplicates by
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

log = logging.getLogger(__name__)

_body_decoder = msgspec.json.Decoder(StoredBody)

_LOCK_ALL = """
SELECT id, project, type, payload::text AS payload FROM outbox_event
WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_LOCK_SOME = """
SELECT id, project, type, payload::text AS payload FROM outbox_event
WHERE published_at IS NULL AND id = ANY($2::bigint[]) ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_MARK = "UPDATE outbox_event SET published_at = now() WHERE id = ANY($1::bigint[])"


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


async def publish_pending(publisher: Redis, *, ids: Sequence[int] | None = None, limit: int = 500) -> int:
    """Publish up to ``limit`` unpublished events (only ``ids`` when given) in id order; returns how many.

    One short transaction: lock the rows (skipping rows another relay holds), publish them in one
    pipeline on ``publisher``, mark them published, commit. If publishing fails nothing is marked
    and the rows stay for the next pass.
    """
    db = engine()
    async with db.transaction() as transaction:
        connection = transaction.connection
        if ids is None:
            rows = await connection.fetch(_LOCK_ALL, limit)
        else:
            if not ids:
                return 0
            rows = await connection.fetch(_LOCK_SOME, limit, list(ids))
        if not rows:
            return 0
        async with publisher.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.publish(project_channel(row["project"]), encode(envelope_of(row)))
            await pipe.execute()
        await connection.execute(_MARK, [row["id"] for row in rows])
    return len(rows)


class OutboxRelay:
    """One relay loop. ``start()`` runs it as a background task; ``stop()`` ends it.

    ``listen=False`` turns the NOTIFY wake-up off, leaving only the periodic sweep (the naive
    polling relay the benchmark compares with). ``notify_delay`` coalesces notifications: where
    the writer publishes right after its own commit (the fast path), the relay is only the safety
    net, and running a pass per commit would double the work at 1,000 commits/s for nothing.
    """

    def __init__(
        self,
        publisher: Redis,
        *,
        sweep_interval: float = 1.0,
        batch_size: int = 500,
        listen: bool = True,
        notify_delay: float = 0.0,
    ) -> None:
        self.publisher = publisher
        self.sweep_interval = sweep_interval
        self.batch_size = batch_size
        self.listen = listen
        self.notify_delay = notify_delay
        self._delayed_wake: asyncio.TimerHandle | None = None
        self.published = 0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: Any = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

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
        while (count := await publish_pending(self.publisher, limit=self.batch_size)) > 0:
            self.published += count
            if count < self.batch_size:
                break

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
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

    def _on_notify(self, *_: object) -> None:
        if self.notify_delay <= 0:
            self._wake.set()
        elif self._delayed_wake is None:  # one pass for all the commits of the next notify_delay
            self._delayed_wake = asyncio.get_running_loop().call_later(self.notify_delay, self._wake_later)

    def _wake_later(self) -> None:
        self._delayed_wake = None
        self._wake.set()

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), timeout=2)
