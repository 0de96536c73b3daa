"""The inbox never shows less (or more) than the database: offline, a gateway restart, two agents."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import socketio
from playwright.async_api import Page, expect

from server.accounts.tokens import agent_token
from tests.browser.conftest import LiveStack
from tests.browser.inbox_support import (
    Visitor,
    conversation_of,
    inbox_world,
    open_inbox,
    stored_messages,
    thread_seqs,
)
from tests.browser.support import screenshot

pytestmark = pytest.mark.browser


async def _agent_socket(stack: LiveStack, user_id: int) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    token, _ = agent_token(user_id, stack.env["SECRET_KEY"])
    await client.connect(
        stack.realtime_url,
        namespaces=["/agent"],
        auth={"token": token},
        transports=["websocket"],
        wait_timeout=10,
    )
    return client


async def _thread_equals_database(
    page: Page, conversation_id: int, count: int, within: float = 30.0
) -> list[int]:
    rows = await stored_messages(conversation_id, count)
    expected = [row["seq"] for row in rows]
    deadline = asyncio.get_running_loop().time() + within
    while (seqs := await thread_seqs(page)) != expected:
        assert len(seqs) == len(set(seqs)), f"a message shown twice: {seqs}"
        assert asyncio.get_running_loop().time() < deadline, f"thread {seqs} != database {expected}"
        await asyncio.sleep(0.2)
    bodies = await page.eval_on_selector_all(
        "#messages [data-seq] .message__body", "els => els.map(e => e.textContent)"
    )
    assert bodies == [row["body"] for row in rows]
    return seqs


async def test_offline_then_back_the_thread_holds_exactly_the_database(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    world = await inbox_world()
    alice, bob = world.agents
    visitor = await Visitor(live_stack, world.project.id).connect()
    bob_socket = await _agent_socket(live_stack, bob.id)
    try:
        await visitor.say("first")
        conversation_id = await conversation_of(visitor)
        page = await new_page(viewport={"width": 1400, "height": 860})
        await open_inbox(page, live_stack, alice, world.project.id, conversation_id)
        await expect(page.locator("#messages")).to_contain_text("first")

        await page.context.set_offline(True)
        await expect(page.locator("#connection")).not_to_have_attribute("data-state", "connected")
        for index in range(20):
            await visitor.say(f"while you were away {index + 1}")
        ack = await bob_socket.call(
            "message:send",
            {
                "conversation_id": conversation_id,
                "body": "Bob here, I can help",
                "client_msg_id": str(uuid.uuid4()),
            },
            namespace="/agent",
        )
        assert ack["accepted"] is True
        await stored_messages(conversation_id, 22)
        assert await thread_seqs(page) == [1], "nothing can arrive while offline"

        await page.context.set_offline(False)
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected", timeout=20_000)
        seqs = await _thread_equals_database(page, conversation_id, 22)
        assert seqs == list(range(1, 23))
        await expect(page.locator(".message--agent").last).to_contain_text("Bob here")
        await screenshot(page, "inbox-after-offline")
    finally:
        await bob_socket.disconnect()
        await visitor.close()


async def test_a_gateway_restart_catches_up_without_duplicates_and_stays_live(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    world = await inbox_world()
    alice = world.agents[0]
    visitor = await Visitor(live_stack, world.project.id).connect()
    try:
        for index in range(3):
            await visitor.say(f"before {index}")
        conversation_id = await conversation_of(visitor)
        await stored_messages(conversation_id, 3)
        page = await new_page()
        await open_inbox(page, live_stack, alice, world.project.id, conversation_id)
        await _thread_equals_database(page, conversation_id, 3)
        await visitor.close()

        live_stack.restart("realtime")
        visitor = await Visitor(live_stack, world.project.id, uid=visitor.uid).connect()
        await visitor.say("during the restart")  # may land before the inbox reconnects
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected", timeout=20_000)
        await _thread_equals_database(page, conversation_id, 4)
        await visitor.say("after the restart")
        await expect(page.locator("#messages")).to_contain_text("after the restart")
        assert await _thread_equals_database(page, conversation_id, 5) == [1, 2, 3, 4, 5]
    finally:
        await visitor.close()


async def test_two_agents_see_assignment_messages_and_typing(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    world = await inbox_world()
    alice, bob = world.agents
    visitor = await Visitor(live_stack, world.project.id).connect()
    try:
        await visitor.say("Can someone help me?")
        conversation_id = await conversation_of(visitor)
        alice_page = await new_page()
        bob_page = await new_page()
        await open_inbox(alice_page, live_stack, alice, world.project.id, conversation_id)
        await open_inbox(bob_page, live_stack, bob, world.project.id, conversation_id)

        await alice_page.get_by_role("button", name="Assign to me").click()
        bob_row = bob_page.locator(f'.conversation-row[data-conversation-id="{conversation_id}"]')
        await expect(bob_row.locator(".assignee")).to_have_text("Alice Agent")
        await expect(bob_page.locator("#assignee-select")).to_have_value(str(alice.id))

        await visitor.say("My order #123 is late")
        for page in (alice_page, bob_page):
            await expect(page.locator("#messages")).to_contain_text("My order #123 is late")

        typing: dict[str, Any] = {"conversation_id": conversation_id, "typing": True}
        await visitor.call("typing", typing)
        for page in (alice_page, bob_page):
            await expect(page.locator("#typing")).to_have_text("The visitor is typing…")
        await bob_page.locator("#composer-text").press_sequentially("Looking")
        await expect(alice_page.locator("#typing")).to_contain_text("Bob Agent")
        await bob_page.locator("#composer-text").press("Enter")
        await expect(alice_page.locator(".message--agent").last).to_contain_text("Looking")
        await screenshot(alice_page, "inbox-two-agents")
    finally:
        await visitor.close()
