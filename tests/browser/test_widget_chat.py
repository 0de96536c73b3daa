"""The widget on a customer's page, chatting with an agent: real processes, Chromium, python-socketio."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect

from server.tenancy.tables import Project, ProjectMember
from tests.browser.conftest import LiveStack
from tests.browser.support import assert_accessible, screenshot
from tests.browser.widget_support import agent_socket, host_site
from tests.factories import make_member, make_project, make_user

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]


async def allow(project: Project, *origins: str) -> None:
    await Project.update({Project.allowed_origins: list(origins)}).where(Project.id == project.id)


async def open_widget(page: Page, url: str) -> None:
    await page.goto(url)
    launcher = page.locator("parley-widget").locator(".launcher")
    await expect(launcher).to_be_visible()
    await launcher.click()
    await expect(page.locator("parley-widget .panel")).to_be_visible()


async def test_round_trip_typing_notes_and_markup(
    live_stack: LiveStack, new_page: NewPage, settings: Any
) -> None:
    project = await make_project(greeting_text="Hello from Acme!", widget_color="#0f766e")
    user = await make_user(name="Anna")
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    async with (
        host_site(live_stack.web_url, live_stack.realtime_url, project.public_key) as site,
        agent_socket(live_stack.realtime_url, settings.security.secret_key, user.id) as agent,
    ):
        await allow(project, site.origin)
        page = await new_page()
        await page.goto(site.origin + "/")
        widget = page.locator("parley-widget")
        await expect(widget.locator(".launcher")).to_be_visible()
        await screenshot(page, "widget-launcher")
        await widget.locator(".launcher").click()
        panel = widget.locator(".panel")
        await expect(panel).to_be_visible()
        await expect(panel.locator(".greeting")).to_have_text("Hello from Acme!")
        await expect(panel.locator(".availability")).to_have_text("We're online")

        # Visitor -> agent.
        await panel.locator("#parley-input").fill("Do you ship to Iceland?")
        await panel.locator("#parley-input").press("Enter")
        sent = await agent.wait_for(lambda: agent.messages("visitor"))
        assert sent[0]["body"] == "Do you ship to Iceland?"
        conversation_id = sent[0]["conversation_id"]
        mine = panel.locator(".message--visitor").first
        await expect(mine).to_have_attribute("data-state", "delivered")

        # Typing, both ways.
        await agent.call("typing", {"conversation_id": conversation_id, "typing": True})
        await expect(panel.locator(".typing")).to_have_text("Anna is typing…")
        await panel.locator("#parley-input").press_sequentially("Al")
        started = await agent.wait_for(
            lambda: [e for e in agent.named("typing.started") if e["data"]["sender"]["kind"] == "visitor"]
        )
        assert started[0]["conversation_id"] == conversation_id

        # A private note never reaches the visitor; a reply with markup shows as text.
        await agent.call(
            "message:send",
            {"conversation_id": conversation_id, "body": "NOTE: VIP customer", "private": True},
        )
        hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><b>bold</b>'
        await agent.call(
            "message:send",
            {"conversation_id": conversation_id, "body": hostile, "client_msg_id": str(uuid.uuid4())},
        )
        reply = panel.locator(".message--agent .message__body")
        await expect(reply).to_have_text(hostile)
        await expect(panel.locator(".typing")).to_be_hidden()
        await expect(panel.locator(".message--agent .message__meta")).to_contain_text("Anna")
        assert await page.evaluate("() => window.pwned") is None
        assert (
            await panel.locator(".message--agent img, .message--agent script, .message--agent b").count() == 0
        )
        assert "VIP" not in await panel.inner_text()

        # The agent's reply is read: the visitor's message says so once the agent marks it.
        await agent.call("read", {"conversation_id": conversation_id, "seq": 3})
        await expect(mine).to_have_attribute("data-state", "read")

        await assert_accessible(page)
        await screenshot(page, "widget-open")

        # Closed panel: an agent reply shows as an unread badge and in the page's title.
        await panel.locator(".close").click()
        await expect(panel).to_be_hidden()
        await agent.call(
            "message:send",
            {
                "conversation_id": conversation_id,
                "body": "Anything else?",
                "client_msg_id": str(uuid.uuid4()),
            },
        )
        await expect(widget.locator(".badge")).to_have_text("1")
        await expect(page).to_have_title("(1) Shop")
        await screenshot(page, "widget-unread")
        await widget.locator(".launcher").click()
        await expect(widget.locator(".badge")).to_be_hidden()
        await expect(page).to_have_title("Shop")
        assert "VIP" not in await panel.inner_text()
        assert not page.js_errors, page.js_errors  # type: ignore[attr-defined]
