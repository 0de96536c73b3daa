"""The console in Chromium: every page passes axe-core and is photographed light and dark;
markup typed into every field shows as text; a POST without the CSRF token is refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page

from server.accounts.tables import User
from server.tenancy.tables import ApiKey, Project, ProjectMember
from tests import factories as f
from tests.browser.conftest import LiveStack
from tests.browser.support import assert_accessible, screenshot

pytestmark = pytest.mark.browser
Role = ProjectMember.ProjectRole
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


async def _sign_in(page: Page, stack: LiveStack, email: str, next_path: str = "/console/") -> None:
    await page.goto(f"{stack.web_url}/console/login?next={next_path}")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(f.DEFAULT_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{next_path}")


async def _world(name: str = "Acme Shop") -> tuple[User, Project]:
    admin = await f.make_user(email="admin@example.com", name="Ada Admin", role=User.GlobalRole.ADMIN)
    project = await f.make_project(name=name, allowed_origins=["https://shop.example"])
    await f.make_member(project, admin, Role.MANAGER)
    for index, who in enumerate(("Alice Agent", "Bob Agent")):
        user = await f.make_user(email=f"agent{index}@example.com", name=who)
        await f.make_member(project, user, Role.AGENT)
    await f.make_canned_reply(
        project, shortcut="hello", title="Greeting", body="Hi! How can I help you today?"
    )
    await f.make_canned_reply(
        project, shortcut="refund", title="Refunds", body="Refunds take 3 to 5 working days."
    )
    await f.make_api_key(admin, project, name="CRM sync", prefix="prly_1a2b3c4d")
    return admin, project


def _pages(project_id: int) -> dict[str, str]:
    base = f"/console/projects/{project_id}"
    return {
        "console-home": "/console/",
        "console-settings": f"{base}/settings",
        "console-install": f"{base}/install",
        "console-members": f"{base}/members",
        "console-canned-replies": f"{base}/canned-replies",
        "console-api-keys": "/console/api-keys",
        "console-profile": "/console/profile",
        "console-admin-projects": "/console/admin/projects",
        "console-admin-users": "/console/admin/users",
        "console-admin-mailbox": "/console/admin/mailbox",
        "console-admin-system": "/console/admin/system",
        "console-not-found": "/console/no-such-page",
    }


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_every_page_is_accessible_and_photographed(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]], scheme: str
) -> None:
    _, project = await _world()
    page = await new_page(color_scheme=scheme)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    for name, path in (("console-forgot-password", "/console/forgot-password"),):
        await page.goto(live_stack.web_url + path)
        await assert_accessible(page)
        await screenshot(page, name)
    await _sign_in(page, live_stack, "admin@example.com")
    for name, path in _pages(project.id).items():
        response = await page.goto(live_stack.web_url + path)
        assert response is not None and response.status == (404 if name == "console-not-found" else 200), path
        await page.locator("h1").first.wait_for()
        await assert_accessible(page)
        await screenshot(page, name)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"{live_stack.web_url}/console/projects/{project.id}/members")
    await assert_accessible(page)
    await screenshot(page, "console-members-phone")
    assert [e for e in errors if "Content Security Policy" in e] == []


async def test_htmx_navigation_swaps_the_page_and_pushes_the_address(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    _, project = await _world()
    page = await new_page()
    await _sign_in(page, live_stack, "admin@example.com", f"/console/projects/{project.id}/settings")
    await page.evaluate("() => { window.__sameDocument = true; }")
    await page.get_by_role("link", name="Canned replies").click()
    await page.wait_for_url(f"**/console/projects/{project.id}/canned-replies")
    await page.get_by_role("heading", name="Canned replies").wait_for()
    assert await page.evaluate("() => window.__sameDocument") is True  # swapped, not reloaded
    assert await page.title() == "Canned replies · Acme Shop · Parley"
    current = page.locator('#nav a[aria-current="page"]')
    assert await current.inner_text() == "Canned replies"
    await page.get_by_label("Search replies").fill("ref")
    await page.locator("#canned-list").filter(has_not_text="/hello").wait_for()  # swapped by htmx
    assert "/refund" in await page.locator("#canned-list").inner_text()
    assert page.url.endswith("/canned-replies?q=ref")
    await page.go_back()  # history restore: the list before the search
    await page.wait_for_url(f"**/console/projects/{project.id}/canned-replies")
    await page.locator("#canned-list", has_text="/hello").wait_for()


async def test_markup_in_every_field_shows_as_text(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    admin, project = await _world(name="Shop " + XSS)
    await User.update({User.name: XSS}).where(User.id == admin.id)
    await f.make_canned_reply(project, shortcut="xss", title=XSS, body=XSS)
    await ApiKey.update({ApiKey.name: XSS}).where(ApiKey.user == admin.id)
    page = await new_page()
    dialogs: list[Any] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog))
    await _sign_in(page, live_stack, "admin@example.com")
    paths = [*_pages(project.id).values(), f"/console/admin/projects/{project.id}/delete"]
    for path in paths:
        await page.goto(live_stack.web_url + path)
        await page.locator("h1").first.wait_for()
        assert await page.evaluate("() => window.__xss") is None, path
    await page.goto(f"{live_stack.web_url}/console/projects/{project.id}/canned-replies")
    assert await page.get_by_text(XSS, exact=True).first.is_visible()
    assert dialogs == []
    assert await Project.exists().where(Project.id == project.id)


async def test_a_post_without_the_csrf_token_is_refused(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    _, project = await _world()
    page = await new_page()
    await _sign_in(page, live_stack, "admin@example.com", f"/console/projects/{project.id}/settings")
    status = await page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', body: new URLSearchParams({name: 'Hijacked'}),
             headers: {'content-type': 'application/x-www-form-urlencoded'}})).status""",
        f"/console/projects/{project.id}/settings/general",
    )
    assert status == 403
    with_token = await page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', body: new URLSearchParams({name: 'Renamed'}),
             headers: {'content-type': 'application/x-www-form-urlencoded',
                       'x-csrf-token': document.querySelector('meta[name=csrf-token]').content}})).status""",
        f"/console/projects/{project.id}/settings/general",
    )
    assert with_token == 200  # fetch follows the redirect to the page
    stored = await Project.select(Project.name).where(Project.id == project.id).first()
    assert stored == {"name": "Renamed"}


async def test_someone_without_the_role_gets_error_pages_not_data(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    _, project = await _world()
    page = await new_page()
    await _sign_in(page, live_stack, "agent0@example.com")
    for path, status in (
        (f"/console/projects/{project.id}/settings", 403),
        (f"/console/projects/{project.id}/members", 403),
        ("/console/admin/users", 403),
        (f"/console/projects/{project.id + 1}/inbox", 404),
    ):
        response = await page.goto(live_stack.web_url + path)
        assert response is not None and response.status == status
        assert "admin@example.com" not in await page.content()
    await assert_accessible(page)
    await screenshot(page, "console-forbidden")
