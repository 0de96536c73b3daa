"""Case-insensitive uniqueness of e-mail addresses."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-24T23:00:13:152818"
VERSION = "1.38.0"
DESCRIPTION = "indexes"

FORWARDS = [
    "CREATE UNIQUE INDEX parley_user_email_lower_key ON parley_user (lower(email))",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS parley_user_email_lower_key",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="accounts", description=DESCRIPTION)

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
