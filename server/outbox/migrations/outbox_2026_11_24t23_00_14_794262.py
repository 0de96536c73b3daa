"""The relay scans unpublished events in id order: a partial index keeps that scan tiny."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migration_sql import sql_migration

ID = "2026-11-24T23:00:14:794262"
VERSION = "1.38.0"
DESCRIPTION = "indexes"

FORWARDS = [
    "CREATE INDEX outbox_event_unpublished_idx ON outbox_event (id) WHERE published_at IS NULL",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS outbox_event_unpublished_idx",
]


async def forwards() -> MigrationManager:
    return sql_migration(
        migration_id=ID, app_name="outbox", description=DESCRIPTION, forwards=FORWARDS, backwards=BACKWARDS
    )
