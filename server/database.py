"""The PostgreSQL engine's connection pool, for processes and commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
