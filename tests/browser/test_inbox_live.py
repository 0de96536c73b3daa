"""The live inbox in a real browser: messages arrive without a reload, replies reach the visitor,
notes do not, and what a page shows is text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import LiveStack
from tests.browser.inbox_support import (
    Visitor,
    conversation_of,
    inbox_world,
    open_inbox,
    stored_messages,
    thread_seqs,
)
from tests.browser.support import assert_accessible, screenshot

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_a_visitor_message_arrives_live_the_reply_reaches_the_visitor_a_note_does_not(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]], scheme: str
) -> None:
    world = await inbox_world()
    alice = world.agents[0]
    visitor = await Visitor(live_stack, world.project.id).connect()
    try:
        await visitor.say("Hello! Is the blue jacket in stock?")
        conversation_id = await conversation_of(visitor)
        await visitor.call(
            "visitor:info",
            {
                "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "language": "de-CH",
                "timezone": "Europe/Zurich",
                "screen": "1440x900",
            },
        )
        await visitor.call("navigate", {"url": "https://shop.example/jackets/blue", "title": "Blue jacket"})
        page = await new_page(color_scheme=scheme, viewport={"width": 1400, "height": 860})
        await open_inbox(page, live_stack, alice, world.project.id)

        row = page.locator(f'.conversation-row[data-conversation-id="{conversation_id}"]')
        await expect(row).to_contain_text("Blue jacket")
        await row.locator("a").click()
        await expect(page.locator("#messages")).to_contain_text("Is the blue jacket in stock?")
        await expect(page.locator("#visitor-panel")).to_contain_text("Firefox 128")

        # A new message appears in the open thread and the list, without a reload.
        await visitor.say("Size M, please. See https://shop.example/jackets/blue?size=m")
        await expect(page.locator("#messages")).to_contain_text("Size M, please.")
        link = page.locator("#messages a", has_text="https://shop.example/jackets/blue?size=m")
        await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        await expect(row).to_contain_text("Size M, please.")

        text = page.locator("#composer-text")
        await text.fill("We have it! Sending a link.")
        await text.press("Enter")
        await expect(page.locator(".message--agent").last).to_have_attribute("data-state", "delivered")
        await page.get_by_label("Private note").check()
        await text.fill("Customer is a regular, offer free shipping")
        await text.press("Enter")
        await expect(page.locator(".message--note")).to_contain_text("offer free shipping")
        rows = await stored_messages(conversation_id, 4)
        assert [(row["body"][:10], row["private"]) for row in rows][2:] == [
            ("We have it", False),
            ("Customer i", True),
        ]
        await visitor.say("Great, thanks")
        await expect(page.locator("#messages")).to_contain_text("Great, thanks")
        bodies = [message["body"] for message in visitor.received]
        assert "We have it! Sending a link." in bodies
        assert not any("free shipping" in body for body in bodies), "a note reached the visitor"
        assert await thread_seqs(page) == [1, 2, 3, 4, 5]
        assert page.js_errors == []  # type: ignore[attr-defined]
        await assert_accessible(page)
        await screenshot(page, "inbox")
    finally:
        await visitor.close()
