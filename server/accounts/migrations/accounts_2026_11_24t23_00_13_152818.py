"""Case-insensitive uniqueness of e-mail addresses."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migration_sql import sql_migration

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
    return sql_migration(
        migration_id=ID, app_name="accounts", description=DESCRIPTION, forwards=FORWARDS, backwards=BACKWARDS
    )
