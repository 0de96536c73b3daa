"""Nothing lost, nothing twice: reloads, a second tab, and an offline outbox across a reload."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect

from server.chat.tables import Message
from tests.browser.conftest import LiveStack
from tests.browser.support import screenshot
from tests.browser.widget_support import panel_of, type_and_send, widget_world

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]


async def test_reload_keeps_history_and_a_second_tab_stays_in_step(
    live_stack: LiveStack, new_page: NewPage, settings: Any
) -> None:
    async with widget_world(
        live_stack.web_url, live_stack.realtime_url, settings.security.secret_key
    ) as world:
        agent = world.online()
        page = await new_page()
        panel = await panel_of(page, world.site.origin + "/")
        await type_and_send(panel, "First question")
        sent = await agent.wait_for(lambda: agent.messages("visitor"))
        conversation_id = sent[0]["conversation_id"]
        await agent.call(
            "message:send",
            {"conversation_id": conversation_id, "body": "First answer", "client_msg_id": str(uuid.uuid4())},
        )
        await expect(panel.locator(".message--agent")).to_have_count(1)

        await page.reload()
        widget = page.locator("parley-widget")
        await widget.locator(".launcher").click()
        bodies = widget.locator(".panel .message__body")
        await expect(bodies).to_have_text(["First question", "First answer"])

        # A second tab of the same visitor: same history, and each tab sees the other's messages.
        other = await page.context.new_page()
        other_panel = await panel_of(other, world.site.origin + "/other")
        await expect(other_panel.locator(".message__body")).to_have_text(["First question", "First answer"])
        await type_and_send(other_panel, "From the second tab")
        await expect(bodies).to_have_text(["First question", "First answer", "From the second tab"])
        await agent.call(
            "message:send",
            {"conversation_id": conversation_id, "body": "Seen both", "client_msg_id": str(uuid.uuid4())},
        )
        expected = ["First question", "First answer", "From the second tab", "Seen both"]
        await expect(bodies).to_have_text(expected)
        await expect(other_panel.locator(".message__body")).to_have_text(expected)
        assert [m["body"] for m in agent.messages("visitor")] == ["First question", "From the second tab"]


async def test_offline_outbox_survives_a_reload_and_sends_each_message_once_in_order(
    live_stack: LiveStack, new_page: NewPage, settings: Any
) -> None:
    async with widget_world(
        live_stack.web_url, live_stack.realtime_url, settings.security.secret_key
    ) as world:
        agent = world.online()
        page = await new_page()
        panel = await panel_of(page, world.site.origin + "/")
        await expect(panel.locator(".availability")).to_have_text("We're online")
        # A second tab shares the outbox: it must not send the queued messages a second time.
        other = await page.context.new_page()
        await panel_of(other, world.site.origin + "/other", open_panel=False)

        await page.context.set_offline(True)
        await expect(panel.locator(".status")).to_have_text(
            "You are offline. Your messages will be sent when the connection is back."
        )
        for text in ("one", "two", "three"):
            await type_and_send(panel, text)
        await expect(panel.locator(".message--visitor[data-state=sending]")).to_have_count(3)
        await screenshot(page, "widget-offline-outbox")

        await page.goto(world.site.origin + "/")  # still offline: from the HTTP cache
        widget = page.locator("parley-widget")
        await widget.locator(".launcher").click()
        pending = widget.locator(".panel .message--visitor")
        await expect(pending).to_have_count(3)
        await expect(pending.locator(".message__body")).to_have_text(["one", "two", "three"])
        assert agent.messages("visitor") == []

        await page.context.set_offline(False)
        await agent.wait_for(lambda: len(agent.messages("visitor")) >= 3)
        await expect(widget.locator(".panel .message--visitor[data-state=delivered]")).to_have_count(3)
        # Both tabs reconnected and flushed; one more message proves everything before it arrived.
        await type_and_send(widget.locator(".panel"), "four")
        await agent.wait_for(lambda: len(agent.messages("visitor")) >= 4)
        assert [m["body"] for m in agent.messages("visitor")] == ["one", "two", "three", "four"]
        conversation_id = agent.messages("visitor")[0]["conversation_id"]
        stored = (
            await Message.select(Message.body)
            .where(Message.conversation == conversation_id)
            .order_by(Message.seq)
        )
        assert [row["body"] for row in stored] == ["one", "two", "three", "four"]
