"""Projects, settings, widget key, members and invitations, deletion."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from server.chat.tables import Conversation, Message, Visitor
from server.queue import make_queue
from server.redis_client import Keys
from server.tenancy.services import CLEAR_PROJECT_KEYS_JOB
from server.tenancy.tables import Project
from tests.api.world import build_world
from tests.processes import PYTHON, running


async def test_project_list_shows_only_memberships(client: httpx.AsyncClient) -> None:
    world = await build_world()

    async def names(actor: str) -> list[str]:
        return [
            p["name"] for p in (await client.get("/api/v1/projects", headers=world.headers(actor))).json()
        ]

    assert await names("admin") == ["Acme", "Globex"]
    assert await names("agent") == ["Acme"]
    assert await names("other_manager") == ["Globex"]
    assert await names("outsider") == []
    assert await names("other_project_key") == ["Globex"]
    roles = {
        p["name"]: p["role"]
        for p in (await client.get("/api/v1/projects", headers=world.headers("agent"))).json()
    }
    assert roles == {"Acme": "agent"}


async def test_settings_are_validated_and_partial(client: httpx.AsyncClient) -> None:
    world = await build_world()
    path = f"/api/v1/projects/{world.project.id}"
    headers = world.headers("manager")
    ok = await client.patch(path, json={"allowed_origins": ["https://Shop.example/", "*"]}, headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["allowed_origins"] == ["https://shop.example", "*"]
    assert ok.json()["name"] == "Acme"  # untouched
    for bad in (
        {"widget_color": "red"},
        {"allowed_origins": ["shop.example/path"]},
        {"name": ""},
        {"nmae": "x"},
    ):
        response = await client.patch(path, json=bad, headers=headers)
        assert response.status_code in (400, 422), (bad, response.text)
        assert response.json()["code"] in ("invalid", "bad_request")


async def test_rotating_the_widget_key_replaces_it_and_drops_the_cache(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    world = await build_world()
    old = world.project.public_key
    await redis.set(Keys.project_by_public_key(old), b"{}")
    rotated = await client.post(
        f"/api/v1/projects/{world.project.id}/widget-key/rotate", headers=world.headers("manager")
    )
    assert rotated.status_code == 200
    assert rotated.json()["public_key"] != old
    assert await redis.get(Keys.project_by_public_key(old)) is None


async def test_inviting_a_member_again_is_a_conflict(client: httpx.AsyncClient) -> None:
    world = await build_world()
    path = f"/api/v1/projects/{world.project.id}/invitations"
    again = await client.post(path, json={"email": "Agent@example.com"}, headers=world.headers("manager"))
    assert again.status_code == 409 and again.json()["code"] == "already_member"


async def test_a_project_keeps_its_last_manager(client: httpx.AsyncClient) -> None:
    world = await build_world()
    manager_id = world.users["manager"].id
    path = f"/api/v1/projects/{world.project.id}/members/{manager_id}"
    demote = await client.patch(path, json={"role": "agent"}, headers=world.headers("admin"))
    assert demote.status_code == 409 and demote.json()["code"] == "last_manager"
    remove = await client.delete(path, headers=world.headers("admin"))
    assert remove.status_code == 409
    promote = await client.patch(
        f"/api/v1/projects/{world.project.id}/members/{world.users['agent'].id}",
        json={"role": "manager"},
        headers=world.headers("admin"),
    )
    assert promote.status_code == 200
    assert (await client.delete(path, headers=world.headers("admin"))).status_code == 204


async def test_deleting_a_project_cascades_and_schedules_redis_cleanup(
    client: httpx.AsyncClient, settings: Any
) -> None:
    world = await build_world()
    project_id = world.project.id
    response = await client.delete(f"/api/v1/projects/{project_id}", headers=world.headers("admin"))
    assert response.status_code == 204
    assert not await Project.exists().where(Project.id == project_id)
    for table in (Visitor, Conversation, Message):
        assert await table.count().where(table.project == project_id) == 0
    assert await Visitor.count().where(Visitor.project == world.other_project.id) == 1
    queue = make_queue(settings.queue_redis)
    try:
        jobs = [(job.function, job.kwargs) async for job in queue.iter_jobs()]
    finally:
        await queue.disconnect()
    assert jobs == [(CLEAR_PROJECT_KEYS_JOB, {"project_id": project_id})], "one cleanup job, for this project"


@pytest.mark.slow
async def test_the_cleanup_job_removes_the_projects_redis_keys(
    client: httpx.AsyncClient, redis: Redis, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    world = await build_world()
    project_id = world.project.id
    await redis.set(Keys.visitor_location(project_id, "v_1"), b"{}")
    await redis.zadd(Keys.visitor_presence(project_id), {"v_1": 1.0})
    await redis.rpush(Keys.mailbox(0, project_id, "v:v_1"), b"a message of a deleted project")
    await redis.set(Keys.visitor_location(world.other_project.id, "v_2"), b"{}")
    assert (
        await client.delete(f"/api/v1/projects/{project_id}", headers=world.headers("admin"))
    ).status_code == 204
    with running([PYTHON, "-m", "saq", "tasks.worker.settings"], subprocess_env, tmp_path / "worker.log"):
        wait_until_async = time.monotonic() + 30
        while time.monotonic() < wait_until_async:
            if not [
                key
                for pattern in Keys.project_patterns(project_id)
                async for key in redis.scan_iter(match=pattern)
            ]:
                break
            await asyncio.sleep(0.2)
    assert [
        key for pattern in Keys.project_patterns(project_id) async for key in redis.scan_iter(match=pattern)
    ] == []
    assert await redis.get(Keys.visitor_location(world.other_project.id, "v_2")) == b"{}"
