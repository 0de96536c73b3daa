"""Count the statements the app sends to PostgreSQL (asyncpg's query logger), for query budgets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from server.database import engine


@asynccontextmanager
async def count_queries() -> AsyncIterator[list[str]]:
    """Record every statement the app sends to PostgreSQL: a pool whose connections log queries
    (asyncpg's query logger) stands in for the engine's pool for the block."""
    db = engine()
    seen: list[str] = []

    async def log_queries(connection: asyncpg.Connection) -> None:
        def record(entry: Any) -> None:
            if not entry.query.startswith("SELECT pg_advisory_unlock_all()"):  # the pool's own reset
                seen.append(entry.query)

        connection.add_query_logger(record)

    original = db.pool
    db.pool = await asyncpg.create_pool(**db.config, init=log_queries, min_size=1, max_size=2)
    try:
        yield seen
    finally:
        await db.pool.close()
        db.pool = original
