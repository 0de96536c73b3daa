"""The one envelope every published event travels in, and the Redis channels it travels on.

Outbox events (durable, from PostgreSQL) and ephemeral socket-level events (typing, presence,
navigation) share this envelope, so a consumer decodes one type. ``id`` is the outbox row id for
durable events and ``None`` for ephemeral ones; ``seq`` is the message seq for message events.
"""

from __future__ import annotations

from typing import Any

import msgspec

from server.redis_client import Keys


class Envelope(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    """An :class:`server.outbox.events.EventType` value."""
    project_id: int
    at: float
    """Unix time the event happened (seconds, float)."""
    data: dict[str, Any]
    id: int | None = None
    conversation_id: int | None = None
    seq: int | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)


def encode(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode(raw: bytes | str) -> Envelope:
    return _decoder.decode(raw)


def project_channel(project_id: int) -> str:
    """Every event of one project is published here; realtime nodes subscribe per project they serve."""
    return Keys.project_events(project_id)
