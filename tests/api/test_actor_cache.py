"""Resolved callers are reused, but never outlive a change to access data, whoever makes it."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from litestar import Litestar

from server.accounts.tables import User
from server.database import engine
from server.tenancy.tables import ApiKey, ProjectMember
from server.web_state import actors_of
from tests.api.world import World, build_world
from tests.conftest import serve_in_process
from tests.query_log import count_queries


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 5.0) -> bool:
    """Poll ``check`` until it holds or ``within`` seconds pass (changes by SQL arrive by NOTIFY)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(0.02)


def _inbox(world: World) -> str:
    return f"/api/v1/projects/{world.project.id}/conversations"


async def test_a_warm_caller_costs_no_database_statement(client: httpx.AsyncClient) -> None:
    world = await build_world()
    headers = world.headers("agent")
    assert (await client.get(_inbox(world), headers=headers)).status_code == 200  # resolves and caches
    async with count_queries() as queries:
        response = await client.get(_inbox(world), headers=headers)
    assert response.status_code == 200
    assert len(queries) == 1, queries  # the list itself, nothing for who is calling


async def test_a_key_revoked_through_the_api_fails_on_its_next_request(client: httpx.AsyncClient) -> None:
    world = await build_world()
    headers = world.headers("manager")
    created = await client.post("/api/v1/api-keys", json={"name": "soon revoked"}, headers=headers)
    key = {"authorization": f"Bearer {created.json()['secret']}"}
    assert (await client.get("/api/v1/users/me", headers=key)).status_code == 200  # now cached
    revoked = await client.delete(f"/api/v1/api-keys/{created.json()['key']['id']}", headers=headers)
    assert revoked.status_code == 200
    response = await client.get("/api/v1/users/me", headers=key)
    assert response.status_code == 401 and response.json()["code"] == "invalid_api_key"


async def test_a_role_change_through_the_api_applies_on_the_next_request(client: httpx.AsyncClient) -> None:
    world = await build_world()
    agent = world.users["agent"]
    project = f"/api/v1/projects/{world.project.id}"
    assert (await client.get(project + "/members", headers=world.headers("agent"))).status_code == 200
    promoted = await client.patch(
        f"{project}/members/{agent.id}", json={"role": "manager"}, headers=world.headers("manager")
    )
    assert promoted.status_code == 200
    renamed = await client.patch(project, json={"name": "Renamed"}, headers=world.headers("agent"))
    assert renamed.status_code == 200, renamed.text


async def test_changes_made_outside_the_api_reach_the_cache(client: httpx.AsyncClient) -> None:
    """piccolo-admin or psql write the tables directly: the NOTIFY trigger empties the cache."""
    world = await build_world()
    agent_headers, manager_headers = world.headers("agent"), world.headers("manager")
    assert (await client.get(_inbox(world), headers=agent_headers)).status_code == 200
    assert (await client.get(_inbox(world), headers=manager_headers)).status_code == 200

    await ProjectMember.delete().where(
        (ProjectMember.project == world.project.id) & (ProjectMember.user == world.users["agent"].id)
    )

    async def agent_is_out() -> bool:
        return (await client.get(_inbox(world), headers=agent_headers)).status_code == 404

    assert await eventually(agent_is_out)

    await ApiKey.update({ApiKey.revoked_at: ApiKey.created_at}).where(
        ApiKey.user == world.users["manager"].id
    )

    async def manager_key_is_dead() -> bool:
        return (await client.get(_inbox(world), headers=manager_headers)).status_code == 401

    assert await eventually(manager_key_is_dead)


async def test_a_deactivated_users_cached_key_stops_working(client: httpx.AsyncClient) -> None:
    world = await build_world()
    agent_headers = world.headers("agent")
    assert (await client.get("/api/v1/users/me", headers=agent_headers)).status_code == 200
    await User.update({User.active: False}).where(User.id == world.users["agent"].id)

    async def refused() -> bool:
        return (await client.get("/api/v1/users/me", headers=agent_headers)).status_code == 401

    assert await eventually(refused)


async def test_without_its_listener_the_cache_is_off(client: httpx.AsyncClient, app: Litestar) -> None:
    """A lost LISTEN connection could lose a notification: until it is back, nothing is reused."""
    world = await build_world()
    headers = world.headers("agent")
    actors = actors_of(app)
    assert (await client.get(_inbox(world), headers=headers)).status_code == 200
    assert actors.live and len(actors) >= 1

    await engine().run_ddl(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE query LIKE 'LISTEN %parley_access_changed%' AND pid <> pg_backend_pid()"
    )

    async def offline() -> bool:
        return not actors.live

    assert await eventually(offline)
    assert len(actors) == 0
    async with count_queries() as queries:
        assert (await client.get(_inbox(world), headers=headers)).status_code == 200
    assert len(queries) >= 2, queries  # resolved from the database again

    async def back() -> bool:
        return actors.live

    assert await eventually(back)


def _with_cache_seconds(settings: Any, seconds: int) -> Litestar:
    from server.web import create_app

    return create_app(
        dataclasses.replace(
            settings, security=dataclasses.replace(settings.security, actor_cache_seconds=seconds)
        )
    )


async def test_a_cached_caller_expires_after_actor_cache_seconds(settings: Any) -> None:
    world = await build_world()  # before the app listens: its notifications cannot empty the cache
    app = _with_cache_seconds(settings, 2)
    headers = world.headers("agent")
    async with serve_in_process(app) as client, count_queries() as queries:
        assert await eventually(lambda: _true(actors_of(app).live), within=30)
        started = time.monotonic()
        assert (await client.get(_inbox(world), headers=headers)).status_code == 200  # resolved, kept
        costs: list[int] = []
        deadline = started + 60
        while time.monotonic() < deadline:
            before = len(queries)
            assert (await client.get(_inbox(world), headers=headers)).status_code == 200
            costs.append(len(queries) - before)
            if costs[-1] > 1:  # resolved from the database again: the entry expired
                break
            await asyncio.sleep(0.05)
        expired_after = time.monotonic() - started
    assert costs[0] == 1, costs  # the request right after is served from the cache
    assert costs[-1] > 1, f"still cached after 60 s ({len(costs)} requests)"
    # A lower bound only (a slow machine makes it later, never earlier): kept for the 2 s.
    assert expired_after >= 2.0, expired_after


async def test_actor_cache_seconds_0_resolves_every_request(settings: Any) -> None:
    world = await build_world()
    app = _with_cache_seconds(settings, 0)
    headers = world.headers("agent")
    async with serve_in_process(app) as client:
        actors = actors_of(app)
        assert not actors.enabled
        for _ in range(3):
            async with count_queries() as queries:
                assert (await client.get(_inbox(world), headers=headers)).status_code == 200
            assert len(queries) > 1, queries  # who is calling, from the database, each time
        assert len(actors) == 0
        # and so a change is seen by the very next request, with no notification needed
        await ApiKey.update({ApiKey.revoked_at: ApiKey.created_at}).where(
            ApiKey.user == world.users["agent"].id
        )
        assert (await client.get(_inbox(world), headers=headers)).status_code == 401


async def _true(value: bool) -> bool:
    return value
