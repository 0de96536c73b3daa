"""The console's shell: navigation by role, fragments for htmx, CSRF, security headers, error pages."""

from __future__ import annotations

import re

import httpx

from server.accounts.tables import User
from server.tenancy.tables import ProjectMember
from tests import factories as f
from tests.console.helpers import HTMX, sign_in

Role = ProjectMember.ProjectRole


def nav_links(html: str) -> set[str]:
    nav = re.search(r'<nav id="nav".*?</nav>', html, re.S)
    assert nav, "the page has the navigation"
    return set(re.findall(r'href="([^"]+)"', nav.group(0)))


async def test_navigation_follows_the_role(client: httpx.AsyncClient) -> None:
    project = await f.make_project(name="Shop")
    agent = await f.make_user(email="agent@example.com")
    await f.make_member(project, agent, Role.AGENT)
    await sign_in(client, "agent@example.com")
    page = await client.get(f"/console/projects/{project.id}/inbox")
    links = nav_links((await client.get("/console/")).text)
    assert f"/console/projects/{project.id}/inbox" in links and "/console/profile" in links
    assert f"/console/projects/{project.id}/settings" not in links
    assert not any(link.startswith("/console/admin") for link in links)
    assert page.status_code in (200, 404)  # the inbox page belongs to the inbox issue


async def test_a_manager_sees_the_project_pages_and_an_admin_administration(
    client: httpx.AsyncClient,
) -> None:
    project = await f.make_project(name="Shop")
    manager = await f.make_user(email="boss@example.com")
    await f.make_member(project, manager, Role.MANAGER)
    await sign_in(client, "boss@example.com")
    links = nav_links((await client.get(f"/console/projects/{project.id}/settings")).text)
    for page in ("inbox", "settings", "install", "members", "canned-replies"):
        assert f"/console/projects/{project.id}/{page}" in links
    assert "/console/admin/system" not in links

    await f.make_user(email="root@example.com", role=User.GlobalRole.ADMIN)
    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as admin:
        await sign_in(admin, "root@example.com")
        admin_links = nav_links((await admin.get("/console/")).text)
    assert {"/console/admin/projects", "/console/admin/users", "/console/admin/system"} <= admin_links


async def test_an_htmx_request_gets_the_blocks_not_the_page(client: httpx.AsyncClient) -> None:
    await f.make_user(email="ann@example.com", name="Ann")
    await sign_in(client, "ann@example.com")
    full = await client.get("/console/")
    fragment = await client.get("/console/", headers=HTMX)
    assert full.text.lstrip().lower().startswith("<!doctype html>")
    assert "<html" not in fragment.text and "<head>" not in fragment.text and "<body" not in fragment.text
    assert fragment.text.startswith("<title>Your projects · Parley</title>")
    assert '<nav id="nav" class="sidebar" aria-label="Console" hx-swap-oob="true">' in fragment.text
    assert "Welcome, Ann" in fragment.text
    # A history restore (back button with no cache) needs the whole page again.
    restore = await client.get("/console/", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


async def test_signed_out_browsers_go_to_the_sign_in_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/projects/7/settings?tab=1", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=/console/projects/7/settings%3Ftab%3D1"
    fragment = await client.get("/console/", headers=HTMX, follow_redirects=False)
    assert fragment.headers["hx-redirect"].startswith("/console/login")


async def test_a_post_without_the_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    await f.make_user(email="ann@example.com")
    csrf = await sign_in(client, "ann@example.com")
    refused = await client.post("/console/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    assert "Content-Security-Policy" in refused.headers
    wrong = await client.post("/console/logout", headers={"X-CSRF-Token": "forged"}, follow_redirects=False)
    assert wrong.status_code == 403
    assert (await client.get("/console/", follow_redirects=False)).status_code == 200  # still signed in
    by_header = await client.post("/console/logout", headers={"X-CSRF-Token": csrf}, follow_redirects=False)
    assert by_header.status_code == 303
    assert (await client.get("/console/", follow_redirects=False)).status_code == 303


async def test_every_console_response_carries_the_security_headers(
    client: httpx.AsyncClient, settings: object
) -> None:
    await f.make_user(email="ann@example.com")
    responses = [
        await client.get("/console/login"),
        await client.get("/console/", follow_redirects=False),
        await client.get("/console/no-such-page"),
    ]
    await sign_in(client, "ann@example.com")
    responses += [await client.get("/console/"), await client.get("/console/projects/12345/settings")]
    for response in responses:
        policy = response.headers["content-security-policy"]
        assert (
            "script-src 'self'" in policy
            and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        )
        assert "frame-ancestors 'none'" in policy
        assert "connect-src 'self' ws://" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    assert "content-security-policy" not in (await client.get("/healthz")).headers


async def test_pages_of_other_projects_are_404_pages(client: httpx.AsyncClient) -> None:
    mine, theirs = await f.make_project(name="Mine"), await f.make_project(name="Theirs")
    agent = await f.make_user(email="agent@example.com")
    await f.make_member(mine, agent, Role.AGENT)
    await sign_in(client, "agent@example.com")
    other = await client.get(f"/console/projects/{theirs.id}/settings")
    missing = await client.get("/console/projects/999999/settings")
    unmatched = await client.get("/console/nothing/here")
    for response in (other, missing, unmatched):
        assert response.status_code == 404
        assert '<h1 id="error-title">Nothing here</h1>' in response.text
        assert "Theirs" not in response.text


async def test_no_console_path_escapes_the_csrf_check(client: httpx.AsyncClient) -> None:
    """The exemptions (piccolo-admin, the SAQ UI, the JSON API) are path prefixes, not substrings:
    /console/admin/... and /console/api-keys are console forms like any other."""
    await f.make_user(email="root@example.com", role=User.GlobalRole.ADMIN)
    await sign_in(client, "root@example.com")
    for path in (
        "/console/admin/projects",
        "/console/admin/users",
        "/console/admin/system/dead-letters/replay",
        "/console/api-keys",
    ):
        refused = await client.post(
            path, data={"name": "x", "email": "x@example.com"}, follow_redirects=False
        )
        assert refused.status_code == 403, path


async def test_every_page_renders_as_an_htmx_fragment_too(client: httpx.AsyncClient) -> None:
    """Boosted navigation asks for the blocks alone: a page's own top-level macro is undefined
    there (API keys with a key, and System, answered 500 to htmx)."""
    admin = await f.make_user(email="root@example.com", role=User.GlobalRole.ADMIN)
    project = await f.make_project(name="Shop")
    await f.make_member(project, admin, ProjectMember.ProjectRole.MANAGER)
    await f.make_api_key(admin, project, name="CRM sync")
    await f.make_canned_reply(project, shortcut="hi", body="Hello")
    await sign_in(client, "root@example.com")
    base = f"/console/projects/{project.id}"
    for path in (
        "/console/",
        f"{base}/settings",
        f"{base}/install",
        f"{base}/members",
        f"{base}/canned-replies",
        "/console/api-keys",
        "/console/profile",
        "/console/admin/projects",
        "/console/admin/users",
        "/console/admin/mailbox",
        "/console/admin/system",
    ):
        fragment = await client.get(path, headers=HTMX)
        assert fragment.status_code == 200, (path, fragment.text[-500:])
        assert "<html" not in fragment.text, path
