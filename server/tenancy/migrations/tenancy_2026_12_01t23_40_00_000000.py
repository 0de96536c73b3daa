"""Project changes announce themselves: NOTIFY parley_project_changed with the old public key
(``<public key> deleted <id>`` for a deleted project).

The widget path caches its project lookup in Redis by public key (``server/chat/visitors.py``).
Every web process listens on this channel (``server/tenancy/widget_cache.py``) and drops the
cached entry of the key named, so any change to a project row (a setting added next year,
piccolo-admin, psql) clears the cache when it commits: nothing to remember per setting.
TRUNCATE names no row and sends ``*`` (clear every entry).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from server.migration_sql import sql_migration

ID = "2026-12-01T23:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "notify on project changes (widget cache)"

FORWARDS = [
    """
    CREATE OR REPLACE FUNCTION parley_notify_project_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_LEVEL = 'STATEMENT' THEN
            PERFORM pg_notify('parley_project_changed', '*');
        ELSIF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('parley_project_changed', OLD.public_key || ' deleted ' || OLD.id);
        ELSE
            PERFORM pg_notify('parley_project_changed', OLD.public_key);
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER project_widget_cache_row AFTER UPDATE OR DELETE ON project "
    "FOR EACH ROW EXECUTE FUNCTION parley_notify_project_changed()",
    "CREATE TRIGGER project_widget_cache_truncate AFTER TRUNCATE ON project "
    "FOR EACH STATEMENT EXECUTE FUNCTION parley_notify_project_changed()",
]
BACKWARDS = [
    "DROP TRIGGER IF EXISTS project_widget_cache_truncate ON project",
    "DROP TRIGGER IF EXISTS project_widget_cache_row ON project",
    "DROP FUNCTION IF EXISTS parley_notify_project_changed()",
]


async def forwards() -> MigrationManager:
    return sql_migration(
        migration_id=ID, app_name="tenancy", description=DESCRIPTION, forwards=FORWARDS, backwards=BACKWARDS
    )
