"""Indexes for the inbox queries. Messages by (conversation, seq) use the unique constraint's index."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

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
    manager = MigrationManager(migration_id=ID, app_name="chat", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in FORWARDS:
            await engine.run_ddl(statement)

    async def run_backwards() -> None:
        engine = engine_finder()
        assert engine is not None
        for statement in BACKWARDS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
