"""The widget renews its visitor token before it expires: the socket and the API keep working.

With ``VISITOR_TOKEN_SECONDS=6`` the widget renews every ~3 s (half the life of a short token;
a minute before expiry for real ones). Across three renewals, past the expiry of the first token,
messages go both ways with none lost or doubled, on the one socket opened at the start, and no
call is ever refused for an expired token; a gateway restart afterwards reconnects at once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest
from playwright.async_api import Page, WebSocket, expect

from tests.browser.conftest import LiveStack
from tests.browser.support import screenshot
from tests.browser.widget_support import Agent, panel_of, type_and_send, widget_world

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]


def _visitor_messages_are(agent: Agent, count: int) -> bool:
    return len(agent.messages("visitor")) == count


async def test_the_token_is_renewed_and_nothing_is_lost(
    live_stack_factory: Callable[..., LiveStack], new_page: NewPage, settings: Any
) -> None:
    stack = live_stack_factory(VISITOR_TOKEN_SECONDS="6")
    async with widget_world(stack.web_url, stack.realtime_url, settings.security.secret_key) as world:
        agent = world.online()
        page = await new_page()
        sockets: list[WebSocket] = []
        refusals: list[str] = []
        unauthorized: list[str] = []

        def watch(socket: WebSocket) -> None:
            sockets.append(socket)
            socket.on(
                "framereceived", lambda frame: refusals.append(str(frame)) if "44/" in str(frame) else None
            )

        page.on("websocket", watch)
        page.on(
            "response", lambda response: unauthorized.append(response.url) if response.status == 401 else None
        )
        panel = await panel_of(page, world.site.origin + "/")
        store = f"parley:{world.project.public_key}"

        async def stored_session() -> dict[str, Any]:
            session: dict[str, Any] = json.loads(
                await page.evaluate(f"() => localStorage.getItem('{store}')")
            )
            return session

        first = await stored_session()
        assert first["expires_at"] - time.time() <= 7
        await type_and_send(panel, "v0")
        sent = await agent.wait_for(lambda: agent.messages("visitor"))
        conversation_id = sent[0]["conversation_id"]

        session = first
        for round_number in range(1, 4):
            # The next renewal: a new token with a later expiry, in localStorage for the next load too.
            await page.wait_for_function(
                f"(exp) => JSON.parse(localStorage.getItem('{store}')).expires_at > exp",
                arg=session["expires_at"],
                timeout=15_000,
            )
            session = await stored_session()
            assert session["visitor_uid"] == first["visitor_uid"]
            await type_and_send(panel, f"v{round_number}")
            await agent.wait_for(partial(_visitor_messages_are, agent, round_number + 1))
            ack = await agent.call(
                "message:send",
                {
                    "conversation_id": conversation_id,
                    "body": f"a{round_number}",
                    "client_msg_id": str(uuid.uuid4()),
                },
            )
            assert ack["accepted"] is True
            await expect(panel.locator(".message--agent")).to_have_count(round_number)
        assert time.time() > first["expires_at"]  # the first token is dead; the widget lives on

        assert [m["body"] for m in agent.messages("visitor")] == ["v0", "v1", "v2", "v3"]
        assert await panel.locator(".message--agent .message__body").all_text_contents() == ["a1", "a2", "a3"]
        await expect(panel.locator(".message--visitor").last).to_have_attribute("data-state", "delivered")
        assert len(sockets) == 1 and not sockets[0].is_closed()  # one socket all along
        assert refusals == [] and unauthorized == []

        # A reconnect long after the first token expired: it authenticates with a current one.
        stack.restart("realtime")
        await type_and_send(panel, "after the restart")
        await expect(panel.locator(".message--visitor").last).to_have_attribute(
            "data-state", "delivered", timeout=20_000
        )
        assert len(sockets) >= 2 and refusals == [] and unauthorized == []
        await screenshot(page, "widget-after-renewals")
