"""The servers a test run uses: embedded ones in a temporary directory, or the URLs' servers.

With ``DATABASE_URL`` set, the run creates a fresh database ``parley_test_<random>`` on that
server and drops it at the end, so it never touches the named database's own tables. With
``REDIS_URL`` set, the run uses that Redis database and FLUSHes it between tests; under
``pytest -n N`` worker ``k`` uses the database number after it by ``k`` (``/0`` -> ``/0``, ``/1``, ...).

``PARLEY_TEST_REDIS=cluster`` (and no ``REDIS_URL``) runs the tests on a real three-primary Valkey
cluster started for the run (one per xdist worker), ``PARLEY_TEST_REDIS=sentinel`` on a
Sentinel-managed primary and replica (``tests/redis_servers.py``); PostgreSQL stays embedded and,
on a cluster, so does the Redis of SAQ's queue (``QUEUE_REDIS_URL``). ``make test`` runs the
tests that cover every Redis role on a cluster too.
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
from tests.redis_servers import SentinelPair, ValkeyCluster

TOPOLOGIES = ("single", "cluster", "sentinel")


@dataclass
class TestStack:
    env: dict[str, str] = field(default_factory=dict)
    embedded: EmbeddedServers | None = None
    external_admin_url: str | None = None
    external_database: str | None = None
    topology: ValkeyCluster | SentinelPair | None = None

    def start(self, worker: int | None = None) -> dict[str, str]:
        """Start (or create) this run's servers; ``worker`` is the xdist worker's number, if any."""
        database_url = os.environ.get("DATABASE_URL", "").strip()
        redis_url = os.environ.get("REDIS_URL", "").strip()
        kind = os.environ.get("PARLEY_TEST_REDIS", "single").strip() or "single"
        if kind not in TOPOLOGIES:
            raise SystemExit(f"PARLEY_TEST_REDIS must be one of {', '.join(TOPOLOGIES)}, got {kind!r}")
        if not redis_url and kind != "single":
            self.topology = ValkeyCluster() if kind == "cluster" else SentinelPair()
            redis_url = self.topology.start().url
        queue_url = os.environ.get("QUEUE_REDIS_URL", "").strip()
        if not database_url or not redis_url or (kind == "cluster" and not queue_url):
            root = Path(tempfile.mkdtemp(prefix="parley-test-"))
            self.embedded = EmbeddedServers(root, database="parley_test")
            urls = self.embedded.start()
            database_url = database_url or urls["DATABASE_URL"]
            redis_url = redis_url or urls["REDIS_URL"]
            if kind == "cluster":
                # SAQ does not run on a cluster (docs/scaling.md): its queue gets the embedded server.
                queue_url = queue_url or urls["REDIS_URL"]
        else:
            if worker and self.topology is None:
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
        if queue_url:
            self.env["QUEUE_REDIS_URL"] = queue_url
        return self.env

    async def _execute(self, sql: str) -> None:
        assert self.external_admin_url is not None
        connection = await asyncpg.connect(self.external_admin_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    def stop(self) -> None:
        # Each step even if an earlier one failed: a cluster run once left its Valkey cluster
        # and PostgreSQL running after a failed stop.
        try:
            if self.external_database is not None:
                asyncio.run(self._execute(f'DROP DATABASE IF EXISTS "{self.external_database}" WITH (FORCE)'))
        finally:
            try:
                if self.embedded is not None:
                    self.embedded.remove()
            finally:
                if self.topology is not None:
                    self.topology.stop()


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
