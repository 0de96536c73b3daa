"""Recording outbox events: only inside the writer's PostgreSQL transaction.

An event is a row of ``outbox_event`` written in the same transaction as the change it
describes, so the two commit or roll back together. The ``payload`` column holds the envelope's
body (``conversation_id``, ``seq``, ``at``, ``data``); ``id``, ``type`` and ``project`` are
columns. After the insert a ``NOTIFY parley_outbox`` carrying the new ids is queued: PostgreSQL
delivers it at commit, and the relay publishes those rows at once.

A writer that publishes its own events right after its commit (the worker storing messages, see
:class:`server.outbox.relay.FastPublisher`) records them with ``notify=False``: the relay then
leaves them to that writer for a grace period, and publishes them only if the writer did not
(it crashed between commit and publish).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec

from server.database import engine
from server.outbox.envelope import Envelope

NOTIFY_CHANNEL = "parley_outbox"
"""The LISTEN/NOTIFY channel the relay listens on; the payload is the new event ids, comma-separated
(empty when there were too many to list: then the relay looks at every unpublished row)."""
_MAX_NOTIFY_PAYLOAD = 7_900  # PostgreSQL refuses payloads of 8,000 bytes and more


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


async def record_events(events: Sequence[NewEvent], *, notify: bool = True) -> list[int]:
    """Insert several events in one statement (in the given order); returns their ids in that order.

    Refuses to run outside a transaction (:class:`OutsideTransaction`). ``notify=False`` is for a
    writer that publishes the events itself after its commit (see the module docstring).
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
    # unnest + INSERT ... RETURNING keeps the input order (one scan, serial ids in order).
    ids: list[int] = [row["id"] for row in rows]
    if notify:
        payload = ",".join(map(str, ids))
        await connection.execute(
            "SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload if len(payload) <= _MAX_NOTIFY_PAYLOAD else ""
        )
    return ids


def envelope_of_new(event: NewEvent, event_id: int) -> Envelope:
    """The envelope of an event just recorded as ``event_id``, as the relay would build it from its row."""
    return Envelope(
        type=event.type,
        project_id=event.project_id,
        at=event.at,
        data=event.data,
        id=event_id,
        conversation_id=event.conversation_id,
        seq=event.seq,
    )


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
