"""Fixtures: real PostgreSQL and Redis (embedded by default), migrations once, clean state per test."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar
from redis.asyncio import Redis

from tests.stack import TestStack

_stack = TestStack()


def _xdist_controller(config: pytest.Config) -> bool:
    """Under ``pytest -n N`` the controlling process runs no test: it needs no servers."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _xdist_controller(config):
        return
    # Each xdist worker ("gw0", "gw1", ...) gets servers or databases of its own.
    worker_id = getattr(config, "workerinput", {}).get("workerid")
    worker = int(worker_id[2:]) if worker_id else None
    # Before any test module imports piccolo_conf: the engine reads DATABASE_URL at import.
    os.environ.update(_stack.start(worker=worker))


def pytest_unconfigure(config: pytest.Config) -> None:
    _stack.stop()


@pytest.fixture(scope="session")
def stack() -> TestStack:
    return _stack


@pytest.fixture(scope="session")
def settings() -> Any:
    from server.settings import load_settings

    return load_settings(os.environ)


@pytest.fixture(scope="session", autouse=True)
async def database(settings: Any) -> AsyncIterator[None]:
    """Migrate once per run and hold a pool for the tests' own queries."""
    from server.database import connection_pool
    from server.migrations import migrate

    async with connection_pool(settings.database.pool_size):
        await migrate()
        yield


@pytest.fixture(scope="session")
async def redis(settings: Any) -> AsyncIterator[Redis]:
    from server.redis_client import make_redis

    client = make_redis(settings.redis)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def queue_redis(settings: Any, redis: Redis) -> AsyncIterator[Redis]:
    """The Redis of SAQ's queues: the same as ``redis`` unless ``QUEUE_REDIS_URL`` names another."""
    from server.redis_client import make_redis

    if settings.queue_redis.url == settings.redis.url:
        yield redis
        return
    client = make_redis(settings.queue_redis)
    yield client
    await client.aclose()


@pytest.fixture(autouse=True)
async def clean_state(database: None, redis: Redis, queue_redis: Redis) -> AsyncIterator[None]:
    """Every test starts from empty tables and an empty Redis database (and queue database)."""
    yield
    from tests.factories import truncate_all

    await truncate_all()
    await redis.flushdb()
    if queue_redis is not redis:
        await queue_redis.flushdb()


@pytest.fixture
def app(settings: Any) -> Litestar:
    from server.web import create_app

    return create_app(settings)


@asynccontextmanager
async def serve_in_process(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app, in the test's own event loop (so they share the DB pool).

    Litestar's AsyncTestClient runs the app on a portal thread with another loop, where the
    asyncpg pool the tests hold would fail; httpx's ASGI transport plus the app's lifespan
    keep everything on one loop.
    """
    # The lifespan holds an anyio task group: enter and exit it in one task of its own, since
    # pytest-asyncio may tear a fixture down in another task than the one that set it up.
    started, stopping = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stopping.wait()

    lifespan = asyncio.create_task(run_lifespan())
    await asyncio.wait([lifespan, asyncio.create_task(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if lifespan.done():
        lifespan.result()  # raise the start-up error
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            yield http
    finally:
        stopping.set()
        await lifespan


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(app) as http:
        yield http


@pytest.fixture
def subprocess_env() -> Iterator[dict[str, str]]:
    """The environment for a child process of ours: the test servers' URLs and secret."""
    yield {**os.environ, "PYTHONUNBUFFERED": "1"}
