"""Hand-written SQL migrations (indexes Piccolo cannot declare), built the same way everywhere."""

from __future__ import annotations

from collections.abc import Sequence

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.database import engine


def sql_migration(
    *, migration_id: str, app_name: str, description: str, forwards: Sequence[str], backwards: Sequence[str]
) -> MigrationManager:
    """A migration that runs ``forwards`` statements in order (``backwards`` to undo it)."""
    manager = MigrationManager(migration_id=migration_id, app_name=app_name, description=description)

    async def run() -> None:
        for statement in forwards:
            await engine().run_ddl(statement)

    async def run_backwards() -> None:
        for statement in backwards:
            await engine().run_ddl(statement)

    manager.add_raw(run)
    manager.add_raw_backwards(run_backwards)
    return manager
