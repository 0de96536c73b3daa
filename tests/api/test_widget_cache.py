"""The widget's cached project lookup never outlives a change of the project (issue #10, items 3-4)."""

from __future__ import annotations

import time

import httpx
import jwt
from redis.asyncio import Redis

from server.chat.identity import sign_user_id
from server.redis_client import Keys
from server.tenancy.tables import Project
from tests import factories as f
from tests.api.world import build_world
from tests.pipeline.helpers import eventually

ORIGIN = {"origin": "https://shop.example"}


async def session(client: httpx.AsyncClient, public_key: str, identity: dict[str, str]) -> httpx.Response:
    body = {"public_key": public_key, "identity": identity}
    return await client.post("/api/widget/v1/session", json=body, headers=ORIGIN)


def hmac_identity(secret: str) -> dict[str, str]:
    return {"user_id": "cust-1", "signature": sign_user_id("cust-1", secret)}


def jwt_identity(secret: str) -> dict[str, str]:
    return {"jwt": jwt.encode({"sub": "cust-1", "exp": int(time.time()) + 60}, secret)}


async def wait_until_gone(redis: Redis, key: str) -> None:
    """The listener drops the entry when the notification arrives (milliseconds): wait for that."""

    async def gone() -> bool:
        return not await redis.exists(key)

    await eventually(gone, within=10, what=f"{key} to be dropped")


async def test_a_rotated_identity_secret_takes_effect_at_once(client: httpx.AsyncClient) -> None:
    world = await build_world()
    old = world.project.identity_secret
    for identity in (hmac_identity(old), jwt_identity(old)):
        assert (await session(client, world.project.public_key, identity)).status_code == 200  # now cached
    rotated = await client.post(
        f"/api/v1/projects/{world.project.id}/identity-secret/rotate", headers=world.headers("manager")
    )
    new = rotated.json()["identity_secret"]
    for identity in (hmac_identity(old), jwt_identity(old)):
        refused = await session(client, world.project.public_key, identity)
        assert refused.status_code == 401 and refused.json()["code"] == "identity_invalid", refused.text
    for identity in (hmac_identity(new), jwt_identity(new)):
        assert (await session(client, world.project.public_key, identity)).status_code == 200


async def test_a_change_made_outside_the_services_clears_the_cache_when_it_commits(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    """piccolo-admin or psql: the row trigger's NOTIFY reaches the web process's listener."""
    project = await f.make_project(allowed_origins=["https://shop.example"])
    assert (
        await session(client, project.public_key, hmac_identity(project.identity_secret))
    ).status_code == 200
    key = Keys.project_by_public_key(project.public_key)
    assert await redis.exists(key)
    await Project.update({Project.identity_secret: "set-in-piccolo-admin"}).where(Project.id == project.id)
    await wait_until_gone(redis, key)
    accepted = await session(client, project.public_key, hmac_identity("set-in-piccolo-admin"))
    assert accepted.status_code == 200


async def test_a_deleted_projects_visitor_token_cannot_send(client: httpx.AsyncClient) -> None:
    world = await build_world()
    opened = await client.post(
        "/api/widget/v1/session", json={"public_key": world.project.public_key}, headers=ORIGIN
    )
    token = {"authorization": f"Bearer {opened.json()['token']}", **ORIGIN}
    sent = await client.post("/api/widget/v1/messages", json={"body": "before"}, headers=token)
    assert sent.status_code == 202
    deleted = await client.delete(f"/api/v1/projects/{world.project.id}", headers=world.headers("admin"))
    assert deleted.status_code == 204
    refused = await client.post("/api/widget/v1/messages", json={"body": "after"}, headers=token)
    # The token's widget key is gone with its project (the tombstone stays for tokens without one).
    assert refused.status_code == 404 and refused.json()["code"] == "unknown_widget_key"
    read = await client.get("/api/widget/v1/conversations", headers=token)
    assert read.status_code == 404


async def test_a_project_deleted_outside_the_services_leaves_a_tombstone(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    project = await f.make_project(allowed_origins=["https://shop.example"])
    opened = await client.post(
        "/api/widget/v1/session", json={"public_key": project.public_key}, headers=ORIGIN
    )
    token = {"authorization": f"Bearer {opened.json()['token']}", **ORIGIN}
    await Project.delete().where(Project.id == project.id)

    async def tombstone() -> bool:
        return bool(await redis.exists(Keys.deleted_project(project.id)))

    await eventually(tombstone, within=10, what="the tombstone")
    refused = await client.post("/api/widget/v1/messages", json={"body": "after"}, headers=token)
    assert refused.status_code == 404
