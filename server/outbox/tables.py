"""The outbox table: one row per domain event, written in the same transaction as the change."""

from __future__ import annotations

from piccolo.columns import JSONB, BigSerial, ForeignKey, OnDelete, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from server.tenancy.tables import Project


class OutboxEvent(Table, tablename="outbox_event"):
    """A domain event waiting to be (or already) published on Redis pub/sub by the relay."""

    id = BigSerial(primary_key=True)
    project = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    type = Varchar(length=64, help_text="aggregate.past_tense, e.g. message.created.")
    payload = JSONB(help_text="The event envelope's data.")
    created_at = Timestamptz(default=TimestamptzNow())
    published_at = Timestamptz(null=True, default=None, help_text="NULL until the relay published it.")
