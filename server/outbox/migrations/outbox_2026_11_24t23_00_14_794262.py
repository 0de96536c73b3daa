"""The relay scans unpublished events in id order: a partial index keeps that scan tiny."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

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
    manager = MigrationManager(migration_id=ID, app_name="outbox", description=DESCRIPTION)

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
