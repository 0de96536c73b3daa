"""API keys in the console: the secret once, usable by an HTTP client, revoked and then refused."""

from __future__ import annotations

import re

import httpx

from server.tenancy.tables import ApiKey, ProjectMember
from tests import factories as f
from tests.console.helpers import field_error, post, sign_in

Role = ProjectMember.ProjectRole


async def test_a_key_is_shown_once_works_and_stops_when_revoked(client: httpx.AsyncClient) -> None:
    project = await f.make_project(name="Shop")
    manager = await f.make_user(email="boss@example.com")
    await f.make_member(project, manager, Role.MANAGER)
    csrf = await sign_in(client, "boss@example.com")
    created = await post(
        client,
        "/console/api-keys",
        csrf,
        {"name": "CRM <sync>", "project_id": str(project.id), "read_only": "on"},
    )
    assert created.status_code == 200, created.text[-3000:]
    secret = re.search(r'<code id="new-key-secret">([^<]+)</code>', created.text)
    assert secret, "the new key is shown"
    listing = await client.get("/console/api-keys")
    assert secret.group(1) not in listing.text and "CRM &lt;sync&gt;" in listing.text
    assert "read-only" in listing.text

    bearer = {"authorization": f"Bearer {secret.group(1)}"}
    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as program:
        assert (await program.get(f"/api/v1/projects/{project.id}", headers=bearer)).status_code == 200
        key = await ApiKey.objects().where(ApiKey.name == "CRM <sync>").first().output(load_json=True)
        assert key is not None and key.project == project.id and key.scopes == ["read"]
        revoked = await post(client, f"/console/api-keys/{key.id}/revoke", csrf)
        assert revoked.status_code == 303
        refused = await program.get(f"/api/v1/projects/{project.id}", headers=bearer)
        assert refused.status_code == 401 and refused.json()["code"] == "invalid_api_key"
    assert "revoked" in (await client.get("/console/api-keys")).text


async def test_a_key_cannot_be_limited_to_a_project_of_someone_else(client: httpx.AsyncClient) -> None:
    await f.make_user(email="ann@example.com")
    other = await f.make_project(name="Other")
    csrf = await sign_in(client, "ann@example.com")
    refused = await post(client, "/console/api-keys", csrf, {"name": "x", "project_id": str(other.id)})
    assert refused.status_code == 422
    assert field_error(refused.text, "key-project") == "You cannot limit a key to this project"
    past = await post(client, "/console/api-keys", csrf, {"name": "x", "expires_at": "2001-01-01"})
    assert field_error(past.text, "key-expiry") == "must be in the future"
    assert await ApiKey.count() == 0


async def test_others_keys_cannot_be_revoked(client: httpx.AsyncClient) -> None:
    owner = await f.make_user(email="owner@example.com")
    key = await f.make_api_key(owner)
    await f.make_user(email="ann@example.com")
    csrf = await sign_in(client, "ann@example.com")
    assert (await post(client, f"/console/api-keys/{key.id}/revoke", csrf)).status_code == 404
    fresh = await ApiKey.objects().where(ApiKey.id == key.id).first()
    assert fresh is not None and fresh.revoked_at is None
