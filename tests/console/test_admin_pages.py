"""Administration pages: projects (counts, create, delete with typed name) and users."""

from __future__ import annotations

import httpx

from server.accounts.tables import User
from server.tenancy.tables import Project, ProjectMember
from tests import factories as f
from tests.console.helpers import field_error, post, sign_in

Role = ProjectMember.ProjectRole


async def _admin(client: httpx.AsyncClient) -> str:
    await f.make_user(email="root@example.com", role=User.GlobalRole.ADMIN)
    return await sign_in(client, "root@example.com")


async def test_projects_are_listed_with_counts_created_and_deleted(client: httpx.AsyncClient) -> None:
    csrf = await _admin(client)
    shop = await f.make_project(name="Shop")
    visitor = await f.make_visitor(shop)
    await f.make_conversation(shop, visitor)
    await f.make_member(shop, await f.make_user(), Role.AGENT)
    listing = await client.get("/console/admin/projects")
    assert "<td>1</td>\n            <td>1</td>" in listing.text  # one member, one conversation

    created = await post(
        client,
        "/console/admin/projects",
        csrf,
        {"name": "New & shiny", "allowed_origins": "https://a.example\nHTTPS://B.example/"},
    )
    assert created.status_code == 303
    project = await Project.objects().where(Project.name == "New & shiny").first()
    assert project is not None and project.allowed_origins == ["https://a.example", "https://b.example"]
    assert created.headers["location"] == f"/console/projects/{project.id}/settings"
    bad = await post(client, "/console/admin/projects", csrf, {"name": "x", "allowed_origins": "ftp://nope"})
    assert bad.status_code == 422 and field_error(bad.text, "new-project-origins") == "bad origin"

    refused = await post(client, f"/console/admin/projects/{shop.id}/delete", csrf, {"confirm": "shop"})
    assert refused.status_code == 422 and await Project.exists().where(Project.id == shop.id)
    deleted = await post(client, f"/console/admin/projects/{shop.id}/delete", csrf, {"confirm": "Shop"})
    assert deleted.status_code == 303 and not await Project.exists().where(Project.id == shop.id)


async def test_users_are_created_deactivated_reactivated_and_promoted(client: httpx.AsyncClient) -> None:
    csrf = await _admin(client)
    created = await post(
        client,
        "/console/admin/users",
        csrf,
        {"email": "Ann@Example.com", "name": "Ann", "password": "ann's password"},
    )
    assert created.status_code == 303
    ann = await User.objects().where(User.email == "ann@example.com").first()
    assert ann is not None and ann.active
    taken = await post(
        client, "/console/admin/users", csrf, {"email": "ann@example.com", "password": "another one"}
    )
    assert field_error(taken.text, "new-user-email") == "A user with this e-mail address already exists"
    assert "another one" not in taken.text  # a typed password is never echoed

    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as ann_browser:
        await sign_in(ann_browser, "ann@example.com", "ann's password")
        await post(client, f"/console/admin/users/{ann.id}/active", csrf, {})
        assert (await ann_browser.get("/console/", follow_redirects=False)).status_code == 303  # signed out
    assert (await User.objects().where(User.id == ann.id).first()).active is False  # type: ignore[union-attr]
    await post(client, f"/console/admin/users/{ann.id}/active", csrf, {"active": "on"})
    await post(client, f"/console/admin/users/{ann.id}/admin", csrf, {"admin": "on"})
    fresh = await User.objects().where(User.id == ann.id).first()
    assert fresh is not None and fresh.active and fresh.global_role == "admin" and fresh.admin


async def test_an_admin_cannot_lock_themself_out(client: httpx.AsyncClient) -> None:
    csrf = await _admin(client)
    root = await User.objects().where(User.email == "root@example.com").first()
    assert root is not None
    refused = await post(client, f"/console/admin/users/{root.id}/active", csrf, {})
    assert refused.status_code == 422 and "cannot deactivate yourself" in refused.text
    demote = await post(client, f"/console/admin/users/{root.id}/admin", csrf, {})
    assert demote.status_code == 422
    fresh = await User.objects().where(User.id == root.id).first()
    assert fresh is not None and fresh.active and fresh.global_role == "admin"


async def test_administration_is_for_admins_only(client: httpx.AsyncClient) -> None:
    project = await f.make_project(name="Shop")
    manager = await f.make_user(email="boss@example.com")
    await f.make_member(project, manager, Role.MANAGER)
    csrf = await sign_in(client, "boss@example.com")
    for path in (
        "/console/admin/projects",
        "/console/admin/users",
        f"/console/admin/projects/{project.id}/delete",
    ):
        page = await client.get(path)
        assert page.status_code == 403 and "Shop" not in page.text.split("<main")[1]
    assert (
        await post(client, f"/console/admin/projects/{project.id}/delete", csrf, {"confirm": "Shop"})
    ).status_code == 403
    assert await Project.exists().where(Project.id == project.id)


async def test_the_system_page_reports_the_stores_and_the_queue(client: httpx.AsyncClient) -> None:
    await _admin(client)
    page = await client.get("/console/admin/system")
    assert page.status_code == 200
    assert "PostgreSQL" in page.text and "stat__value--ok" in page.text and "Outbox lag" in page.text
    assert 'href="/queues/"' in page.text
