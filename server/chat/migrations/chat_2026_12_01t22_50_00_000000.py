"""An index for the snooze sweep: only snoozed conversations, by the time they reopen."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migration_sql import sql_migration

ID = "2026-12-01T22:50:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "snooze index"

FORWARDS = [
    "CREATE INDEX conversation_snoozed_idx ON conversation (snoozed_until) WHERE status = 'snoozed'",
]
BACKWARDS = ["DROP INDEX IF EXISTS conversation_snoozed_idx"]


async def forwards() -> MigrationManager:
    return sql_migration(
        migration_id=ID, app_name="chat", description=DESCRIPTION, forwards=FORWARDS, backwards=BACKWARDS
    )
