"""The Settings page's appearance preview is the real widget, following the form as it is typed.

The framed page runs /widget.js in preview mode: the real loader and panel (the same shadow DOM
the tests of the widget read), fed by the form through postMessage. Nothing is saved, and no
visitor session, socket or storage is made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from server.chat.tables import Visitor
from server.tenancy.tables import Project, ProjectMember
from tests import factories as f
from tests.browser.conftest import LiveStack
from tests.browser.support import assert_accessible, screenshot

pytestmark = pytest.mark.browser


async def _sign_in(page: Page, stack: LiveStack, email: str, next_path: str) -> None:
    await page.goto(f"{stack.web_url}/console/login?next={next_path}")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(f.DEFAULT_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{next_path}")


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_preview_is_the_real_widget_and_follows_the_form(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]], scheme: str
) -> None:
    project = await f.make_project(
        name="Acme Shop",
        greeting_text="Hello from Acme!",
        offline_text="Back at nine.",
        widget_color="#0f766e",
    )
    manager = await f.make_user(email="boss@example.com", name="Boss")
    await f.make_member(project, manager, ProjectMember.ProjectRole.MANAGER)
    page = await new_page(color_scheme=scheme, viewport={"width": 1280, "height": 1100})
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    settings_path = f"/console/projects/{project.id}/settings"
    await _sign_in(page, live_stack, "boss@example.com", settings_path)

    frame = page.frame_locator("#widget-preview-frame")
    widget = frame.locator("parley-widget")
    panel = widget.locator(".panel")
    await expect(panel).to_be_visible()
    await expect(panel.locator(".title")).to_have_text("Acme Shop")
    await expect(panel.locator(".greeting")).to_have_text("Hello from Acme!")
    await expect(panel.locator(".availability")).to_have_text("We're online")
    header = panel.locator(".header")
    await expect(header).to_have_css("background-color", "rgb(15, 118, 110)")

    # As the manager types: the greeting, the colour, the corner, the offline text.
    await page.get_by_label("Greeting").fill("Welcome to the shop <b>now</b>")
    await expect(panel.locator(".greeting")).to_have_text(
        "Welcome to the shop <b>now</b>"
    )  # text, not markup
    await page.locator("#widget-color").fill("#b91c1c")
    await expect(header).to_have_css("background-color", "rgb(185, 28, 28)")
    await expect(widget.locator(".launcher")).to_have_css("background-color", "rgb(185, 28, 28)")
    await page.get_by_label("Bottom left").check()
    await expect(widget).to_have_attribute("position", "left")
    launcher = await widget.locator(".launcher").bounding_box()
    frame_box = await page.locator("#widget-preview-frame").bounding_box()
    assert launcher is not None and frame_box is not None
    assert launcher["x"] - frame_box["x"] < frame_box["width"] / 2  # drawn in the left corner
    await panel.evaluate("panel => Promise.all(panel.getAnimations().map(a => a.finished))")
    await screenshot(page, "console-settings-preview")

    await page.get_by_label("Offline message").fill("We are closed until Monday.")
    await expect(page.get_by_label("nobody is online")).to_be_checked()
    await expect(panel.locator(".availability")).to_have_text("We're away")
    await expect(panel.locator(".offline-text")).to_have_text("We are closed until Monday.")
    await expect(panel.locator("form.offline")).to_be_visible()
    await page.get_by_label("someone is online").check()
    await expect(panel.locator(".availability")).to_have_text("We're online")
    await expect(panel.locator("form.offline")).to_be_hidden()
    await page.get_by_label("nobody is online").check()
    await expect(panel.locator("form.offline")).to_be_visible()
    await screenshot(page, "console-settings-preview-offline")

    # The form keeps the focus: the preview is inert and takes none.
    await expect(page.get_by_label("nobody is online")).to_be_focused()
    await assert_accessible(page)

    # A preview only: nothing saved, no visitor, no session call, no socket.
    stored = (
        await Project.select(Project.greeting_text, Project.widget_color)
        .where(Project.id == project.id)
        .first()
    )
    assert stored == {"greeting_text": "Hello from Acme!", "widget_color": "#0f766e"}
    assert await Visitor.count().where(Visitor.project == project.id) == 0
    assert not [url for url in requests if "/api/widget/v1/" in url], requests
    assert sockets == []
    assert not page.js_errors, page.js_errors  # type: ignore[attr-defined]

    # Saved, the real settings are what the preview showed.
    await page.get_by_role("button", name="Save appearance").click()
    await expect(page.get_by_text("Widget appearance saved.")).to_be_visible()
    stored = (
        await Project.select(Project.greeting_text, Project.widget_color)
        .where(Project.id == project.id)
        .first()
    )
    assert stored == {"greeting_text": "Welcome to the shop <b>now</b>", "widget_color": "#b91c1c"}
    await expect(panel.locator(".greeting")).to_have_text("Welcome to the shop <b>now</b>")


async def test_dom_snapshots_are_turned_on_and_off_in_settings(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    project = await f.make_project(name="Acme Shop")
    manager = await f.make_user(email="boss@example.com", name="Boss")
    await f.make_member(project, manager, ProjectMember.ProjectRole.MANAGER)
    page = await new_page()
    settings_path = f"/console/projects/{project.id}/settings"
    await _sign_in(page, live_stack, "boss@example.com", settings_path)
    box = page.get_by_label("Let the widget send a copy of the visitor's page")
    await expect(box).not_to_be_checked()
    await box.check()
    await (
        page.locator("#dom-snapshots")
        .locator("xpath=ancestor::form")
        .get_by_role("button", name="Save")
        .click()
    )
    await expect(page.get_by_text("DOM snapshots turned on.")).to_be_visible()
    assert await Project.select(Project.dom_snapshots).where(Project.id == project.id).first() == {
        "dom_snapshots": True
    }
    await expect(page.get_by_label("Let the widget send a copy of the visitor's page")).to_be_checked()
