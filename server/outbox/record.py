"""Recording outbox events: only inside the writer's PostgreSQL transaction.

An event is a row of ``outbox_event`` written in the same transaction as the change it
describes, so the two commit or roll back together. The ``payload`` column holds the envelope's
body (``conversation_id``, ``seq``, ``at``, ``data``); ``id``, ``type`` and ``project`` are
columns. After the insert a ``NOTIFY parley_outbox`` is queued: PostgreSQL delivers it at commit
(and collapses identical notifications of one transaction into one), which wakes the relay.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec

from server.database import engine

NOTIFY_CHANNEL = "parley_outbox"
"""The LISTEN/NOTIFY channel the relay listens on; the payload is empty."""


class OutsideTransaction(RuntimeError):
    """``record_event`` was called without a transaction: the event could outlive a rolled-back change."""


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event about to be recorded. ``type`` is an :class:`~server.outbox.events.EventType` value."""

    type: str
    project_id: int
    data: dict[str, Any]
    conversation_id: int | None = None
    seq: int | None = None
    at: float = msgspec.field(default_factory=time.time)


class StoredBody(msgspec.Struct, frozen=True, omit_defaults=True):
    """What the ``payload`` column holds: the envelope minus the row's own columns."""

    at: float
    data: dict[str, Any]
    conversation_id: int | None = None
    seq: int | None = None


_body_encoder = msgspec.json.Encoder()

_INSERT = """
INSERT INTO outbox_event (project, type, payload)
SELECT * FROM unnest($1::int[], $2::varchar[], $3::text[]::jsonb[])
RETURNING id
"""


def current_connection() -> Any:
    """The asyncpg connection of the running Piccolo transaction, or :class:`OutsideTransaction`."""
    transaction = engine().current_transaction.get()
    if transaction is None:
        raise OutsideTransaction("outbox events are recorded only inside a database transaction")
    return transaction.connection


def encode_body(event: NewEvent) -> str:
    body = StoredBody(at=event.at, data=event.data, conversation_id=event.conversation_id, seq=event.seq)
    return _body_encoder.encode(body).decode()


async def record_events(events: Sequence[NewEvent]) -> list[int]:
    """Insert several events in one statement (in the given order); returns their ids in that order.

    Refuses to run outside a transaction (:class:`OutsideTransaction`).
    """
    connection = current_connection()
    if not events:
        return []
    rows = await connection.fetch(
        _INSERT,
        [event.project_id for event in events],
        [event.type for event in events],
        [encode_body(event) for event in events],
    )
    await connection.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
    # unnest + INSERT ... RETURNING keeps the input order (one scan, serial ids in order).
    return [row["id"] for row in rows]


async def record_event(
    type: str,
    *,
    project_id: int,
    data: dict[str, Any],
    conversation_id: int | None = None,
    seq: int | None = None,
) -> int:
    """Record one event in the current transaction; returns the outbox row id.

    Raises :class:`OutsideTransaction` when no transaction is running, so an event can never be
    published for a change that was rolled back.
    """
    (event_id,) = await record_events(
        [NewEvent(type=type, project_id=project_id, data=data, conversation_id=conversation_id, seq=seq)]
    )
    return event_id
