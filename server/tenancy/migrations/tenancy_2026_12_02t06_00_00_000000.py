"""Invitations carry the invitee's name, as the manager typed it (optional)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migration_sql import sql_migration

ID = "2026-12-02T06:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "invitation name"

FORWARDS = ["ALTER TABLE invitation ADD COLUMN name VARCHAR(100) NOT NULL DEFAULT ''"]
BACKWARDS = ["ALTER TABLE invitation DROP COLUMN IF EXISTS name"]


async def forwards() -> MigrationManager:
    return sql_migration(
        migration_id=ID, app_name="tenancy", description=DESCRIPTION, forwards=FORWARDS, backwards=BACKWARDS
    )
