"""The PostgreSQL engine's connection pool, for processes and commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine


def engine() -> PostgresEngine:
    found = engine_finder()
    if not isinstance(found, PostgresEngine):
        raise RuntimeError("piccolo_conf.DB must be a PostgresEngine")
    return found


async def _keep_session(connection: object) -> None:
    """Skip asyncpg's reset query (``RESET ALL; UNLISTEN *; …``) when a connection returns to the pool.

    That query is one more round trip after every statement Piccolo runs. Nothing of ours puts
    session state on a pooled connection (LISTEN takes a dedicated connection; locks are
    transaction-scoped), and asyncpg still rolls back a transaction left open before reuse.
    """


@asynccontextmanager
async def connection_pool(max_size: int = 2) -> AsyncIterator[PostgresEngine]:
    """Open the engine's pool for the block, unless one is open already (then it is left alone).

    Owning the pool only when it opened it lets an app started inside a test (which already
    holds a pool) share it without closing it on the way out.
    """
    db = engine()
    owned = db.pool is None
    if owned:
        await db.start_connection_pool(max_size=max_size, min_size=1, reset=_keep_session)
    try:
        yield db
    finally:
        if owned:
            await db.close_connection_pool()


async def fetch(sql: str, *args: object) -> list[asyncpg.Record]:
    """Run one read statement (``$1``-style parameters) on a pooled connection; return asyncpg records.

    For hot read paths only: it skips Piccolo's query layer, which turns every row into a dict
    (about a tenth of the inbox list's CPU). It ignores Piccolo's transaction contextvar, so it is
    not for reads that must see the caller's uncommitted writes.
    """
    pool = engine().pool
    if pool is None:
        connection: asyncpg.Connection = await engine().get_new_connection()
        try:
            fetched: list[asyncpg.Record] = await connection.fetch(sql, *args)
            return fetched
        finally:
            await connection.close()
    async with pool.acquire() as pooled:
        records: list[asyncpg.Record] = await pooled.fetch(sql, *args)
        return records
