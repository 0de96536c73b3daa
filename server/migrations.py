"""Applying and checking the Piccolo migrations of every app in ``piccolo_conf.APP_REGISTRY``."""

from __future__ import annotations

import contextlib
import io

from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.apps.migrations.tables import Migration


class MigrationError(Exception):
    """Applying the migrations failed; the message says which step."""


async def pending_migrations() -> list[str]:
    """``app:migration_id`` of every migration on disk that the database has not run."""
    manager = BaseMigrationManager()
    if not await Migration.table_exists().run():
        return ["migrations table missing"]
    ran = {
        (row["app_name"], row["name"]) for row in await Migration.select(Migration.app_name, Migration.name)
    }
    pending: list[str] = []
    for app_name in manager.get_sorted_app_names():
        app_config = manager.get_app_config(app_name)
        modules = manager.get_migration_modules(app_config.resolved_migrations_folder_path)
        pending.extend(
            f"{app_name}:{migration_id}"
            for migration_id in manager.get_migration_ids(modules)
            if (app_name, migration_id) not in ran
        )
    return pending


async def migrate(*, verbose: bool = False) -> list[str]:
    """Apply every pending migration, in dependency order. Returns what was applied."""
    await BaseMigrationManager().create_migration_table()
    before = await pending_migrations()
    output = io.StringIO()
    with contextlib.redirect_stdout(output) if not verbose else contextlib.nullcontext():
        result = await run_forwards(app_name="all")
    if not result.success:
        raise MigrationError(result.message or output.getvalue().strip().splitlines()[-1])
    after = set(await pending_migrations())
    return [name for name in before if name not in after]
