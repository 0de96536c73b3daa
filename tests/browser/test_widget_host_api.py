"""The host page's side: window.Parley queued before load, identify, navigation, the offline form."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect
from redis.asyncio import Redis

from server.chat.identity import sign_user_id
from server.chat.tables import Visitor
from server.redis_client import Keys
from tests.browser.conftest import LiveStack
from tests.browser.support import assert_accessible, screenshot
from tests.browser.widget_support import panel_of, type_and_send, widget_world

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]

# The host's own script file (no inline script under its CSP), run before the async widget.
HOST_SCRIPT = """
window.seen = [];
window.Parley = window.Parley || function () { (window.Parley.q = window.Parley.q || []).push(arguments); };
Parley("on", "ready", function () { seen.push("ready"); });
Parley("on", "open", function () { seen.push("open"); });
Parley("on", "message", function (m) { seen.push("message:" + m.body); });
Parley("on", "unread", function (u) { seen.push("unread:" + u.count); });
Parley("open");
"""


async def test_queued_calls_identify_and_navigation(
    live_stack: LiveStack, new_page: NewPage, settings: Any, redis: Redis
) -> None:
    async with widget_world(
        live_stack.web_url, live_stack.realtime_url, settings.security.secret_key, extra_script=HOST_SCRIPT
    ) as world:
        agent = world.online()
        page = await new_page()
        await page.goto(world.site.origin + "/")
        panel = page.locator("parley-widget .panel")
        await expect(panel).to_be_visible()  # Parley("open") was queued before the widget loaded
        await page.wait_for_function("() => window.seen.includes('ready')")

        secret = world.project.identity_secret
        bad = await page.evaluate(
            "(claim) => Parley.identify(claim).then(() => 'accepted', (e) => e.code)",
            {"user_id": "42", "signature": "0" * 64, "name": "Mallory"},
        )
        assert bad == "identity_invalid"
        assert any("identify was refused" in line for line in page.console_lines)  # type: ignore[attr-defined]
        assert await Visitor.count().where(Visitor.external_id == "42") == 0

        good = await page.evaluate(
            "(claim) => Parley.identify(claim).then(() => 'accepted', (e) => e.message)",
            {"user_id": "42", "signature": sign_user_id("42", secret), "name": "Grace"},
        )
        assert good == "accepted"
        row = await Visitor.select(Visitor.uid, Visitor.name).where(Visitor.external_id == "42").first()
        assert row is not None and row["name"] == "Grace"

        await page.evaluate("() => Parley.send('Hello, I am Grace')")
        got = await agent.wait_for(lambda: agent.messages("visitor"))
        assert got[0]["visitor_uid"] == row["uid"]  # the agent sees the verified visitor
        # visitor:info went once, at the first connect (identify kept the visitor: same uid).
        device = await redis.get(Keys.visitor_device(world.project.id, row["uid"]))
        assert device is not None and b"Chrom" in device, device

        await page.evaluate(
            "() => { history.pushState({}, '', '/pricing?plan=pro'); document.title = 'Pricing'; }"
        )
        navigated = await agent.wait_for(
            lambda: [e for e in agent.named("visitor.navigated") if e["data"]["title"] == "Pricing"]
        )
        assert navigated[-1]["data"]["url"] == world.site.origin + "/pricing?plan=pro"
        await page.evaluate("() => { location.hash = 'faq'; }")
        await agent.wait_for(
            lambda: [e for e in agent.named("visitor.navigated") if e["data"]["url"].endswith("#faq")]
        )
        assert "message:Hello, I am Grace" in await page.evaluate("() => window.seen")

        # A refused message says why, in words.
        refused = await page.evaluate(
            "() => Parley.send('x'.repeat(5001)).then(() => 'sent', (e) => e.message)"
        )
        assert refused == "This message is too long (at most 5,000 characters)."
        await expect(panel.locator(".notice")).to_have_text(refused)


async def test_offline_form_when_no_agent_is_online(
    live_stack: LiveStack, new_page: NewPage, settings: Any
) -> None:
    async with widget_world(
        live_stack.web_url,
        live_stack.realtime_url,
        settings.security.secret_key,
        online_agent=False,
        project_values={"offline_text": "We are out fishing. Leave your address!"},
    ) as world:
        page = await new_page()
        panel = await panel_of(page, world.site.origin + "/")
        await expect(panel.locator(".availability")).to_have_text("We're away")
        form = panel.locator("form.offline")
        await expect(form).to_be_visible()
        await expect(form.locator(".offline-text")).to_have_text("We are out fishing. Leave your address!")
        await expect(panel.locator("form.composer")).to_be_hidden()
        await assert_accessible(page)
        await screenshot(page, "widget-offline-form")
        await form.get_by_label("Your e-mail").fill("bob@example.com")
        await form.get_by_label("Message").fill("Please call me back")
        await form.get_by_role("button", name="Leave your e-mail").click()
        await expect(panel.locator(".status")).to_have_text("Thanks! We will reply to bob@example.com.")
        await expect(panel.locator("form.composer")).to_be_visible()
        row = await Visitor.select(Visitor.email).where(Visitor.project == world.project.id).first()
        assert row == {"email": "bob@example.com"}


async def test_prechat_fields_and_german(live_stack: LiveStack, new_page: NewPage, settings: Any) -> None:
    async with widget_world(
        live_stack.web_url,
        live_stack.realtime_url,
        settings.security.secret_key,
        project_values={"prechat_fields": ["name", "email"]},
    ) as world:
        page = await new_page(locale="de-DE")
        panel = await panel_of(page, world.site.origin + "/")
        form = panel.locator("form.prechat")
        await expect(form).to_be_visible()
        await expect(panel.locator(".availability")).to_have_text("Wir sind online")
        await form.get_by_label("Ihr Name").fill("Ada")
        await form.get_by_label("Ihre E-Mail-Adresse").fill("ada@example.com")
        await form.get_by_role("button", name="Chat beginnen").click()
        await expect(panel.locator("form.composer")).to_be_visible()
        await type_and_send(panel, "Hallo")
        agent = world.online()
        await agent.wait_for(lambda: agent.messages("visitor"))
        row = (
            await Visitor.select(Visitor.name, Visitor.email)
            .where(Visitor.project == world.project.id)
            .first()
        )
        assert row == {"name": "Ada", "email": "ada@example.com"}
        await screenshot(page, "widget-german")
