"""The servers a test run uses: embedded ones in a temporary directory, or the URLs' servers.

With ``DATABASE_URL`` set, the run creates a fresh database ``parley_test_<random>`` on that
server and drops it at the end, so it never touches the named database's own tables. With
``REDIS_URL`` set, the run uses that Redis database and FLUSHes it between tests; under
``pytest -n N`` worker ``k`` uses the database number after it by ``k`` (``/0`` -> ``/0``, ``/1``, ...).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from server.embedded import EmbeddedServers, with_database


@dataclass
class TestStack:
    env: dict[str, str] = field(default_factory=dict)
    embedded: EmbeddedServers | None = None
    external_admin_url: str | None = None
    external_database: str | None = None

    def start(self, worker: int | None = None) -> dict[str, str]:
        """Start (or create) this run's servers; ``worker`` is the xdist worker's number, if any."""
        database_url = os.environ.get("DATABASE_URL", "").strip()
        redis_url = os.environ.get("REDIS_URL", "").strip()
        if not database_url or not redis_url:
            root = Path(tempfile.mkdtemp(prefix="parley-test-"))
            self.embedded = EmbeddedServers(root, database="parley_test")
            urls = self.embedded.start()
            database_url = database_url or urls["DATABASE_URL"]
            redis_url = redis_url or urls["REDIS_URL"]
        else:
            if worker:
                redis_url = redis_database_after(redis_url, worker)
            self.external_admin_url = database_url
            self.external_database = f"parley_test_{secrets.token_hex(4)}"
            asyncio.run(self._execute(f'CREATE DATABASE "{self.external_database}"'))
            database_url = with_database(database_url, self.external_database)
        self.env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(48),
        }
        return self.env

    async def _execute(self, sql: str) -> None:
        assert self.external_admin_url is not None
        connection = await asyncpg.connect(self.external_admin_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    def stop(self) -> None:
        if self.external_database is not None:
            asyncio.run(self._execute(f'DROP DATABASE IF EXISTS "{self.external_database}" WITH (FORCE)'))
        if self.embedded is not None:
            self.embedded.remove()


def redis_database_after(url: str, offset: int) -> str:
    """The same Redis server, database number ``offset`` higher (``/db`` path or ``?db=``)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        base, _, query_string = url.partition("?")
        query = dict(parse_qsl(query_string))
        query["db"] = str(int(query.get("db", "0")) + offset)
        return f"{base}?{urlencode(query)}"
    database = int(parts.path.strip("/") or "0") + offset
    return urlunsplit(parts._replace(path=f"/{database}"))
