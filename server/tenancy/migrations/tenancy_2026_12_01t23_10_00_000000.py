"""Widget settings: where the launcher sits, and which pre-chat fields the widget asks for."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migration_sql import sql_migration

ID = "2026-12-01T23:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "widget launcher position and pre-chat fields"

FORWARDS = [
    "ALTER TABLE project ADD COLUMN launcher_position VARCHAR(5) NOT NULL DEFAULT 'right'",
    "ALTER TABLE project ADD COLUMN prechat_fields VARCHAR(10)[] NOT NULL DEFAULT '{}'",
]
BACKWARDS = [
    "ALTER TABLE project DROP COLUMN IF EXISTS prechat_fields",
    "ALTER TABLE project DROP COLUMN IF EXISTS launcher_position",
]


async def forwards() -> MigrationManager:
    return sql_migration(
        migration_id=ID, app_name="tenancy", description=DESCRIPTION, forwards=FORWARDS, backwards=BACKWARDS
    )
