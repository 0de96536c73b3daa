"""Indexes for the inbox queries. Messages by (conversation, seq) use the unique constraint's index."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migration_sql import sql_migration

ID = "2026-11-24T23:00:13:928126"
VERSION = "1.38.0"
DESCRIPTION = "indexes"

FORWARDS = [
    "CREATE INDEX conversation_inbox_idx ON conversation (project, status, last_message_at DESC NULLS LAST, id DESC)",
    "CREATE INDEX conversation_visitor_idx ON conversation (visitor, created_at DESC)",
    "CREATE INDEX conversation_assignee_idx ON conversation (project, assignee) WHERE assignee IS NOT NULL",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS conversation_inbox_idx",
    "DROP INDEX IF EXISTS conversation_visitor_idx",
    "DROP INDEX IF EXISTS conversation_assignee_idx",
]


async def forwards() -> MigrationManager:
    return sql_migration(
        migration_id=ID, app_name="chat", description=DESCRIPTION, forwards=FORWARDS, backwards=BACKWARDS
    )
