"""The smaller decisions of issue #10, item 7: each one pinned (see docs/api.md, "Requests")."""

from __future__ import annotations

import httpx

from tests.api.world import build_world


async def test_a_too_large_body_is_413_and_says_the_connection_closes(client: httpx.AsyncClient) -> None:
    world = await build_world()
    response = await client.post(
        "/api/v1/projects",
        content=b'{"name": "x"}' + b" " * 1_100_000,
        headers={**world.headers("admin"), "content-type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert response.headers["connection"] == "close"


async def test_json_must_be_declared_as_json(client: httpx.AsyncClient) -> None:
    world = await build_world()
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        headers = dict(world.headers("admin"))
        if content_type:
            headers["content-type"] = content_type
        response = await client.post("/api/v1/projects", content=b'{"name": "x"}', headers=headers)
        assert response.status_code == 415, (content_type, response.text)
        assert response.json()["code"] == "unsupported_media_type"
    declared = await client.post(
        "/api/v1/projects",
        content=b'{"name": "x"}',
        headers={**world.headers("admin"), "content-type": "application/json; charset=utf-8"},
    )
    assert declared.status_code == 201


async def test_nul_in_text_is_400_everywhere(client: httpx.AsyncClient) -> None:
    world = await build_world()
    project = f"/api/v1/projects/{world.project.id}"
    headers = world.headers("manager")
    renamed = await client.patch(project, json={"name": "Ac\u0000me"}, headers=headers)
    message = await client.post(
        f"{project}/conversations/{world.ids['conversation_id']}/messages",
        json={"body": "a\u0000b"},
        headers=headers,
    )
    assert (renamed.status_code, message.status_code) == (400, 400)
    assert renamed.json()["code"] == message.json()["code"] == "invalid"
