"""DOM-snapshot screenshots, opt-in per project (off by default): docs/screenshots.md."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migration_sql import sql_migration

ID = "2026-12-02T06:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "project: dom_snapshots"

FORWARDS = ["ALTER TABLE project ADD COLUMN dom_snapshots BOOLEAN NOT NULL DEFAULT false"]
BACKWARDS = ["ALTER TABLE project DROP COLUMN IF EXISTS dom_snapshots"]


async def forwards() -> MigrationManager:
    return sql_migration(
        migration_id=ID, app_name="tenancy", description=DESCRIPTION, forwards=FORWARDS, backwards=BACKWARDS
    )
