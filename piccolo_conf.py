"""Piccolo configuration: the database engine from DATABASE_URL and the list of our apps."""

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

from server.settings import get_database_settings

DB = PostgresEngine(config={"dsn": get_database_settings().url})

APP_REGISTRY = AppRegistry(
    apps=[
        # piccolo_api's sessions table backs piccolo-admin's own login, which the console
        # login opens for global admins (see server/api/admin.py).
        "piccolo_api.session_auth.piccolo_app",
        "server.accounts.piccolo_app",
        "server.tenancy.piccolo_app",
        "server.chat.piccolo_app",
        "server.outbox.piccolo_app",
    ]
)
