"""The inbox's presence dots in a real browser, fed by coalesced ``presence.changed`` lists (issue #15)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect

from tests import factories as f
from tests.browser.conftest import LiveStack
from tests.browser.inbox_support import Visitor, inbox_world, open_inbox
from tests.browser.support import assert_accessible, screenshot

pytestmark = pytest.mark.browser

VISITORS = 8

COUNT_PRESENCE = """() => {
  window.presenceSeen = [];
  document.body.addEventListener("parley:presence.changed", (event) => {
    window.presenceSeen.push(event.detail.data.changes.map((c) => c.visitor_uid + ":" + c.status));
  });
}"""


async def test_visitors_arriving_and_leaving_at_once_update_every_dot_from_a_few_events(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    world = await inbox_world()
    visitors = [Visitor(live_stack, world.project.id) for _ in range(VISITORS)]
    for visitor in visitors:
        row = await f.make_visitor(world.project, uid=visitor.uid)
        await f.make_conversation(world.project, row)
    page = await new_page(viewport={"width": 1400, "height": 900})
    await open_inbox(page, live_stack, world.agents[0], world.project.id)
    dots = [page.locator(f'[data-visitor-presence="{visitor.uid}"]') for visitor in visitors]
    for dot in dots:
        await expect(dot).to_have_class("presence-dot presence-dot--offline")
    await page.evaluate(COUNT_PRESENCE)

    await asyncio.gather(*(visitor.connect() for visitor in visitors))
    for dot in dots:
        await expect(dot).to_have_class("presence-dot presence-dot--online")
    await screenshot(page, "inbox-presence-storm")
    await assert_accessible(page)

    await asyncio.gather(*(visitor.close() for visitor in visitors))
    for dot in dots:  # after the grace period (1 s here)
        await expect(dot).to_have_class("presence-dot presence-dot--offline", timeout=15_000)
    seen: list[list[str]] = await page.evaluate("window.presenceSeen")
    changes = [change for event in seen for change in event]
    assert sorted(c for c in changes if c.endswith(":online")) == sorted(f"{v.uid}:online" for v in visitors)
    assert sorted(c for c in changes if c.endswith(":offline")) == sorted(
        f"{v.uid}:offline" for v in visitors
    )
    # Eight visitors left within a few milliseconds: one sweep found them all, one list told it.
    offline_events = [event for event in seen if any(c.endswith(":offline") for c in event)]
    assert len(offline_events) <= 2, seen
    assert page.js_errors == []  # type: ignore[attr-defined]
