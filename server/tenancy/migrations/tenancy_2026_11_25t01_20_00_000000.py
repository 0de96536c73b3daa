"""Access changes announce themselves: NOTIFY parley_access_changed when they commit.

Web processes cache resolved callers (server/tenancy/actor_cache.py) and empty the cache on this
notification, whoever made the change (API, piccolo-admin, psql). Statement-level triggers: one
notification per statement, and PostgreSQL folds identical ones within a transaction. Columns
that do not affect access (``api_key.last_used_at``, ``parley_user.last_login``) fire nothing.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migration_sql import sql_migration

ID = "2026-11-25T01:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "notify on access changes"

_TRIGGERS = {
    "project_member": "INSERT OR UPDATE OR DELETE OR TRUNCATE",
    "project": "DELETE OR TRUNCATE",
    "api_key": 'UPDATE OF revoked_at, scopes, expires_at, project, "user", secret_hash OR DELETE OR TRUNCATE',
    "parley_user": "UPDATE OF active, global_role OR DELETE OR TRUNCATE",
}

FORWARDS = [
    """
    CREATE OR REPLACE FUNCTION parley_notify_access_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('parley_access_changed', TG_TABLE_NAME);
        RETURN NULL;
    END
    $$
    """,
    *(
        f"CREATE TRIGGER {table}_access_changed AFTER {events} ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION parley_notify_access_changed()"
        for table, events in _TRIGGERS.items()
    ),
]
BACKWARDS = [
    *(f"DROP TRIGGER IF EXISTS {table}_access_changed ON {table}" for table in _TRIGGERS),
    "DROP FUNCTION IF EXISTS parley_notify_access_changed()",
]


async def forwards() -> MigrationManager:
    return sql_migration(
        migration_id=ID, app_name="tenancy", description=DESCRIPTION, forwards=FORWARDS, backwards=BACKWARDS
    )
