"""Project settings in the console: the API's services and rules, errors inline, managers only."""

from __future__ import annotations

import httpx

from server.tenancy.tables import Project, ProjectMember
from tests import factories as f
from tests.console.helpers import HTMX, field_error, post, sign_in

Role = ProjectMember.ProjectRole


async def _origins(project: Project) -> list[str]:
    row = await Project.select(Project.allowed_origins).where(Project.id == project.id).first()
    assert row is not None
    return list(row["allowed_origins"])


async def _manager_client(client: httpx.AsyncClient) -> tuple[Project, str]:
    project = await f.make_project(name="Shop", allowed_origins=[])
    manager = await f.make_user(email="boss@example.com")
    await f.make_member(project, manager, Role.MANAGER)
    return project, await sign_in(client, "boss@example.com")


async def test_origins_are_added_normalised_and_removed(client: httpx.AsyncClient) -> None:
    project, csrf = await _manager_client(client)
    base = f"/console/projects/{project.id}/settings"
    added = await post(client, base + "/origins/add", csrf, {"origin": " HTTPS://Shop.Example/ "})
    assert added.status_code == 303 and added.headers["location"] == base
    page = await client.get(base)
    assert "<code>https://shop.example</code>" in page.text
    assert "Origin added." in page.text  # the flash, once
    assert "Origin added." not in (await client.get(base)).text
    assert await _origins(project) == ["https://shop.example"]
    await post(client, base + "/origins/remove", csrf, {"origin": "https://shop.example"})
    assert await _origins(project) == []


async def test_a_bad_origin_is_an_inline_error_and_nothing_changes(client: httpx.AsyncClient) -> None:
    project, csrf = await _manager_client(client)
    base = f"/console/projects/{project.id}/settings"
    refused = await post(client, base + "/origins/add", csrf, {"origin": "shop.example/path"})
    assert refused.status_code == 422
    assert field_error(refused.text, "new-origin") == "bad origin"
    assert 'value="shop.example/path"' in refused.text  # what was typed stays in the field
    assert await _origins(project) == []


async def test_an_htmx_save_answers_with_hx_location_and_an_error_with_the_main_block(
    client: httpx.AsyncClient,
) -> None:
    project, csrf = await _manager_client(client)
    base = f"/console/projects/{project.id}/settings"
    headers = {**HTMX, "X-CSRF-Token": csrf}
    saved = await client.post(base + "/general", data={"name": "Shop & Co"}, headers=headers)
    assert saved.status_code == 200 and base in saved.headers["hx-location"]
    empty = await client.post(base + "/general", data={"name": ""}, headers=headers)
    assert empty.status_code == 422 and "<html" not in empty.text
    assert field_error(empty.text, "project-name") == "Must not be empty"
    bad_colour = await client.post(
        base + "/appearance",
        data={"widget_color": "red", "greeting_text": "Hi", "offline_text": "Away"},
        headers=headers,
    )
    assert bad_colour.status_code == 422
    assert field_error(bad_colour.text, "widget-color") == "Is not in the expected format"
    stored = await Project.select(Project.name, Project.widget_color).where(Project.id == project.id).first()
    assert stored == {"name": "Shop & Co", "widget_color": "#2563eb"}


async def test_markup_in_a_name_is_shown_as_text(client: httpx.AsyncClient) -> None:
    project, csrf = await _manager_client(client)
    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    await post(client, f"/console/projects/{project.id}/settings/general", csrf, {"name": payload})
    page = await client.get(f"/console/projects/{project.id}/settings")
    assert payload not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page.text


async def test_agents_get_a_403_page_and_change_nothing(client: httpx.AsyncClient) -> None:
    project = await f.make_project(name="Shop")
    agent = await f.make_user(email="agent@example.com")
    await f.make_member(project, agent, Role.AGENT)
    csrf = await sign_in(client, "agent@example.com")
    page = await client.get(f"/console/projects/{project.id}/settings")
    assert page.status_code == 403 and "You cannot open this page" in page.text
    attempt = await post(client, f"/console/projects/{project.id}/settings/general", csrf, {"name": "Mine"})
    assert attempt.status_code == 403
    assert await Project.select(Project.name).where(Project.id == project.id).first() == {"name": "Shop"}
