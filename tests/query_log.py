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


@asynccontextmanager
async def count_redis_round_trips() -> AsyncIterator[list[bytes]]:
    """Record each round trip to Redis within the block: a pipeline is one, however many commands
    it carries. redis-py's asyncio connections write a round trip's commands with one call of
    ``send_packed_command``; the first bytes of each write are kept for the failure message."""
    from redis.asyncio.connection import AbstractConnection

    seen: list[bytes] = []
    original = AbstractConnection.send_packed_command

    async def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        packed = command.encode() if isinstance(command, str) else command
        packed = packed if isinstance(packed, bytes) else b"".join(bytes(part) for part in packed)
        if not packed.startswith(b"*1\r\n$4\r\nPING"):  # redis-py's own health check
            seen.append(packed[:80])
        await original(self, command, check_health)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
