"""Bad input gets a 4xx with a machine-readable body, never a 500; cross-project ids are 404."""

from __future__ import annotations

import httpx
import pytest

from tests.api.world import build_world


@pytest.mark.parametrize(
    ("method", "path", "content", "expected"),
    [
        ("POST", "/api/v1/projects", b"{not json", 400),
        ("POST", "/api/v1/projects", b'{"name": 5}', 400),
        ("POST", "/api/v1/projects", b'{"name": "x", "extra": 1}', 400),
        ("POST", "/api/v1/projects", b"[]", 400),
        ("POST", "/api/v1/projects", b'{"name": "' + b"x" * 300 + b'"}', 400),
        ("POST", "/api/v1/projects", b'{"name": "x"}' + b" " * 1_100_000, 413),
        ("GET", "/api/v1/projects/abc", None, 404),
        ("GET", "/api/v1/projects/-1", None, 400),
        ("GET", "/api/v1/projects/99999999999999999999", None, 400),
        ("GET", "/api/v1/projects/{project_id}/conversations?cursor=garbage", None, 422),
        ("GET", "/api/v1/projects/{project_id}/conversations?limit=0", None, 400),
        ("GET", "/api/v1/projects/{project_id}/conversations?limit=many", None, 400),
        ("GET", "/api/v1/projects/{project_id}/conversations?status=closed", None, 400),
        (
            "GET",
            "/api/v1/projects/{project_id}/conversations/{conversation_id}/messages?after_seq=-5",
            None,
            400,
        ),
        ("POST", "/api/v1/api-keys", b'{"name": "k", "expires_at": "yesterday"}', 400),
        ("POST", "/api/v1/api-keys", b'{"name": "k", "expires_at": "2001-01-01T00:00:00Z"}', 422),
        ("POST", "/api/v1/users", b'{"email": "not-an-email", "password": "long enough"}', 422),
    ],
)
async def test_bad_input_is_a_clear_4xx(
    client: httpx.AsyncClient, method: str, path: str, content: bytes | None, expected: int
) -> None:
    world = await build_world()
    url = path.format(**world.ids)
    headers = {**world.headers("admin"), "content-type": "application/json"}
    response = await client.request(method, url, content=content, headers=headers)
    assert response.status_code == expected, response.text
    body = response.json()
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["message"], str)


async def test_validation_errors_name_the_field(client: httpx.AsyncClient) -> None:
    world = await build_world()
    response = await client.post("/api/v1/projects", json={"name": 5}, headers=world.headers("admin"))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "name" in str(response.json()["fields"])


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/{project_id}/conversations/{other_conversation_id}",
        "/api/v1/projects/{project_id}/conversations/{other_conversation_id}/messages",
        "/api/v1/projects/{project_id}/visitors/{other_visitor_id}",
    ],
)
async def test_ids_of_another_project_are_404(client: httpx.AsyncClient, path: str) -> None:
    world = await build_world()
    for actor in ("agent", "manager", "admin"):
        response = await client.get(path.format(**world.ids), headers=world.headers(actor))
        assert response.status_code == 404, (actor, response.text)
        assert response.json()["code"] == "not_found"
        assert "Globex" not in response.text


async def test_unknown_route_and_method_are_json_errors(client: httpx.AsyncClient) -> None:
    world = await build_world()
    assert (await client.get("/api/v1/nope", headers=world.headers("admin"))).json()["code"] == "not_found"
    response = await client.put("/api/v1/projects", headers=world.headers("admin"))
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


async def test_admin_on_a_project_that_does_not_exist_gets_404(client: httpx.AsyncClient) -> None:
    world = await build_world()
    for method, path, body in (
        ("GET", "/api/v1/projects/424242", None),
        ("POST", "/api/v1/projects/424242/canned-replies", {"shortcut": "x", "body": "y"}),
        ("GET", "/api/v1/projects/424242/conversations", None),
    ):
        response = await client.request(method, path, json=body, headers=world.headers("admin"))
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "not_found"


async def test_nul_characters_are_a_400_never_a_500(client: httpx.AsyncClient) -> None:
    world = await build_world()
    headers = world.headers("manager")
    project = f"/api/v1/projects/{world.project.id}"
    renamed = await client.patch(project, json={"name": "Ac\u0000me"}, headers=headers)
    assert renamed.status_code == 400 and renamed.json()["code"] == "invalid"
    search = await client.get(project + "/canned-replies", params={"q": "h\u0000i"}, headers=headers)
    assert search.status_code == 200
    message = await client.post(
        f"{project}/conversations/{world.ids['conversation_id']}/messages",
        json={"body": "a\u0000b"},
        headers=headers,
    )
    # 400 like every other NUL (issue #10, item 7): the text cannot be stored as written.
    assert message.status_code == 400 and message.json()["fields"] == {"body": "contains NUL"}
