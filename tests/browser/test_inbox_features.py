"""Inbox features in a real browser: infinite scroll, the / canned picker, snooze, text stays text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from playwright.async_api import Page, expect

from tests import factories as f
from tests.browser.conftest import LiveStack
from tests.browser.inbox_support import Visitor, conversation_of, inbox_world, open_inbox, thread_seqs
from tests.browser.support import assert_accessible, screenshot

pytestmark = pytest.mark.browser


async def test_scrolling_up_loads_older_messages_in_order(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    world = await inbox_world()
    visitor = await f.make_visitor(world.project, name="Olga Older")
    conversation = await f.make_conversation(
        world.project, visitor, last_seq=130, last_message_at=datetime.now(UTC), last_message_preview="m130"
    )
    for seq in range(1, 131):
        await f.make_message(
            conversation, seq=seq, body=f"m{seq}", sender_kind="visitor" if seq % 3 else "agent"
        )
    page = await new_page()
    await open_inbox(page, live_stack, world.agents[0], world.project.id, conversation.id)
    await expect(page.locator("#messages [data-seq]")).to_have_count(50)
    assert await thread_seqs(page) == list(range(81, 131))
    for _ in range(10):
        await page.locator("#thread-scroll").evaluate("el => { el.scrollTop = 0; }")
        if await thread_seqs(page) == list(range(1, 131)):
            break
        await page.wait_for_timeout(300)
    assert await thread_seqs(page) == list(range(1, 131))


async def test_slash_inserts_a_canned_reply_chosen_by_keyboard(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    world = await inbox_world()
    await f.make_canned_reply(world.project, shortcut="hello", title="Greeting", body="Hi! How can I help?")
    await f.make_canned_reply(world.project, shortcut="refund", title="Refunds", body="Refunds take 5 days.")
    visitor = await Visitor(live_stack, world.project.id).connect()
    try:
        await visitor.say("I want my money back")
        conversation_id = await conversation_of(visitor)
        page = await new_page()
        await open_inbox(page, live_stack, world.agents[0], world.project.id, conversation_id)
        text = page.locator("#composer-text")
        await text.click()
        await text.press("/")
        await expect(page.locator("#canned")).to_be_visible()
        await page.locator("#canned-search").press_sequentially("ref")
        await expect(page.locator(".canned__option")).to_have_count(1)
        await page.locator("#canned-search").press("Enter")
        await expect(text).to_have_value("Refunds take 5 days.")
        await text.press("Enter")
        await expect(page.locator(".message--agent").last).to_contain_text("Refunds take 5 days.")
        for _ in range(50):
            if any(m["body"] == "Refunds take 5 days." for m in visitor.received):
                break
            await page.wait_for_timeout(100)
        assert any(m["body"] == "Refunds take 5 days." for m in visitor.received)
    finally:
        await visitor.close()


async def test_snooze_until_a_time_reopens_the_conversation(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    world = await inbox_world()
    visitor = await Visitor(live_stack, world.project.id).connect()
    try:
        await visitor.say("Call me back in a bit")
        conversation_id = await conversation_of(visitor)
        page = await new_page()
        await open_inbox(page, live_stack, world.agents[0], world.project.id, conversation_id)
        await page.get_by_text("Snooze", exact=True).first.click()
        soon = await page.evaluate(
            "() => { const d = new Date(Date.now() + 3000); const p = n => String(n).padStart(2, '0');"
            " return `${d.getFullYear()}-${p(d.getMonth()+1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`; }"
        )
        await page.locator("#snooze-until").fill(soon)
        await page.locator("[data-snooze-form] button").click()
        status = page.locator("#thread-header [data-status]")
        await expect(status).to_have_attribute("data-status", "snoozed")
        # The worker's sweep runs every 5 s: reopened a few seconds after the time, live (a generous
        # wait: on a loaded machine SAQ's cron can run late; speed is not what this test checks).
        await expect(status).to_have_attribute("data-status", "open", timeout=90_000)
    finally:
        await visitor.close()


async def test_markup_in_a_message_and_a_page_title_shows_as_text(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    world = await inbox_world()
    visitor = await Visitor(live_stack, world.project.id).connect()
    try:
        await visitor.say('<img src=x onerror="window.__xss=1"> hi')
        conversation_id = await conversation_of(visitor)
        await visitor.call(
            "navigate", {"url": "https://shop.example/", "title": "<script>window.__xss=2</script>Shop"}
        )
        page = await new_page()
        await open_inbox(page, live_stack, world.agents[0], world.project.id, conversation_id)
        await visitor.say("<b>bold?</b> javascript:alert(3)")
        await expect(page.locator("#messages")).to_contain_text("<b>bold?</b> javascript:alert(3)")
        await expect(page.locator("#messages")).to_contain_text('<img src=x onerror="window.__xss=1"> hi')
        row = page.locator(f'.conversation-row[data-conversation-id="{conversation_id}"]')
        await expect(row).to_contain_text("<script>window.__xss=2</script>Shop")
        await expect(page.locator("#visitor-panel")).to_contain_text("<script>window.__xss=2</script>Shop")
        assert await page.evaluate("() => window.__xss") is None
        assert await page.locator("#messages img, #messages b, #conversation-list script").count() == 0
        assert await page.locator("#messages a").count() == 0, "only http(s) links become links"
        await assert_accessible(page)
        await page.keyboard.press("?")
        await expect(page.locator("#shortcuts")).to_be_visible()
        await assert_accessible(page)
        await screenshot(page, "inbox-shortcuts")
        await page.keyboard.press("Escape")
        await expect(page.locator("#shortcuts")).to_be_hidden()
    finally:
        await visitor.close()
