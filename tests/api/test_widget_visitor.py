"""Widget API additions: settings in the session, the visitor's profile and attributes, the
offline form, agents' availability and names; each only for the token's own project."""

from __future__ import annotations

import time
from typing import Any

import httpx
from redis.asyncio import Redis

from server.chat.identity import sign_user_id
from server.chat.tables import Visitor
from server.redis_client import Keys
from server.tenancy.tables import ProjectMember
from tests import factories as f
from tests.api.world import build_world

ORIGIN = {"origin": "https://shop.example"}


async def _visit(client: httpx.AsyncClient, public_key: str, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/widget/v1/session", json={"public_key": public_key, **body}, headers=ORIGIN
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _bearer(visit: dict[str, Any]) -> dict[str, str]:
    return {"authorization": "Bearer " + visit["token"], **ORIGIN}


async def test_session_carries_widget_settings_and_the_gateway(
    client: httpx.AsyncClient, settings: Any
) -> None:
    project = await f.make_project(launcher_position="left", prechat_fields=["email"])
    visit = await _visit(client, project.public_key)
    assert visit["widget"]["launcher_position"] == "left"
    assert visit["widget"]["prechat_fields"] == ["email"]
    assert visit["realtime_url"] == settings.realtime.public_url
    assert visit["agents_online"] is False
    assert visit["visitor"] == {"name": None, "email": None, "verified": False}


async def test_launcher_position_and_prechat_fields_through_the_rest_api(
    client: httpx.AsyncClient, settings: Any
) -> None:
    """Managers set them with PATCH /projects/{p}; bad values are a 422 naming the field."""
    world = await build_world()
    project = world.project
    headers = world.headers("manager")
    url = f"/api/v1/projects/{project.id}"
    changed = await client.patch(
        url, json={"launcher_position": "left", "prechat_fields": ["name", "email"]}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["launcher_position"] == "left"
    assert changed.json()["prechat_fields"] == ["name", "email"]
    bad = await client.patch(url, json={"launcher_position": "top"}, headers=headers)
    assert bad.status_code in (400, 422) and "launcher_position" in bad.text
    visit = await _visit(client, project.public_key)
    assert visit["widget"]["launcher_position"] == "left"


async def test_profile_and_attributes(client: httpx.AsyncClient) -> None:
    project = await f.make_project()
    visit = await _visit(client, project.public_key)
    response = await client.patch(
        "/api/widget/v1/visitor",
        json={"name": "Ada", "email": "ada@example.com", "attributes": {"plan": "pro", "seats": 3}},
        headers=_bearer(visit),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "Ada", "email": "ada@example.com", "verified": False}
    removed = await client.patch(
        "/api/widget/v1/visitor", json={"attributes": {"seats": None}}, headers=_bearer(visit)
    )
    assert removed.status_code == 200
    row = (
        await Visitor.select(Visitor.metadata)
        .where(Visitor.uid == visit["visitor_uid"])
        .output(load_json=True)
        .first()
    )
    assert row is not None and row["metadata"] == {"plan": "pro"}
    bad = await client.patch(
        "/api/widget/v1/visitor", json={"email": "not-an-address"}, headers=_bearer(visit)
    )
    assert bad.status_code in (400, 422) and bad.json()["code"]
    nested = await client.patch(
        "/api/widget/v1/visitor", json={"attributes": {"x": {"y": 1}}}, headers=_bearer(visit)
    )
    assert nested.status_code in (400, 422)
    anonymous = await client.patch("/api/widget/v1/visitor", json={"name": "Eve"}, headers=ORIGIN)
    assert anonymous.status_code == 401


async def test_a_verified_identity_keeps_its_name(client: httpx.AsyncClient) -> None:
    project = await f.make_project()
    identity = {"user_id": "42", "signature": sign_user_id("42", project.identity_secret), "name": "Grace"}
    visit = await _visit(client, project.public_key, identity=identity)
    assert visit["visitor"]["verified"] is True
    response = await client.patch("/api/widget/v1/visitor", json={"name": "Mallory"}, headers=_bearer(visit))
    assert response.json()["name"] == "Grace"


async def test_offline_form_keeps_the_address_and_queues_a_message(client: httpx.AsyncClient) -> None:
    project = await f.make_project()
    visit = await _visit(client, project.public_key)
    response = await client.post(
        "/api/widget/v1/contact",
        json={"email": "bob@example.com", "message": "Call me back"},
        headers=_bearer(visit),
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] is True
    row = await Visitor.select(Visitor.email).where(Visitor.uid == visit["visitor_uid"]).first()
    assert row == {"email": "bob@example.com"}
    refused = await client.post("/api/widget/v1/contact", json={"email": "nope"}, headers=_bearer(visit))
    assert refused.status_code in (400, 422)


async def test_availability_and_agent_names_of_the_own_project_only(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    project, other = await f.make_project(), await f.make_project()
    anna, bert = await f.make_user(name="Anna"), await f.make_user(name="Bert")
    await f.make_member(project, anna, ProjectMember.ProjectRole.AGENT)
    await f.make_member(other, bert, ProjectMember.ProjectRole.AGENT)
    visit = await _visit(client, project.public_key)
    offline = await client.get("/api/widget/v1/availability", headers=_bearer(visit))
    assert offline.json() == {"agents_online": False}
    await redis.zadd(Keys.agent_presence(other.id), {str(bert.id): time.time() + 60})
    assert (await client.get("/api/widget/v1/availability", headers=_bearer(visit))).json()[
        "agents_online"
    ] is False
    await redis.zadd(Keys.agent_presence(project.id), {str(anna.id): time.time() + 60})
    assert (await client.get("/api/widget/v1/availability", headers=_bearer(visit))).json()[
        "agents_online"
    ] is True
    names = await client.get("/api/widget/v1/agents", headers=_bearer(visit))
    assert names.json() == {"items": [{"id": anna.id, "name": "Anna"}]}
