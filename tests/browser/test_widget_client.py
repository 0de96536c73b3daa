"""static/js/parley-client.js in Chromium against the real gateway: an agent's page that keeps
every message exactly once, in order, across a killed and restarted gateway."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.async_api import Page
from redis.asyncio import Redis

from server.accounts.tokens import agent_token, visitor_token
from server.tenancy.tables import ProjectMember
from tests.browser.conftest import LiveStack
from tests.browser.widget_support import host_site
from tests.factories import (
    make_conversation,
    make_member,
    make_message,
    make_project,
    make_user,
    make_visitor,
)
from tests.processes import ROOT
from tests.realtime.helpers import message_event, publish

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>client</title></head>
<body><main>client test</main><script type="module" src="/client-test.js"></script></body></html>"""

# Records what the client delivers, through its own events and its DOM events on <body>.
SCRIPT = """
import { ParleyClient } from "/parley-client.js";
const params = new URLSearchParams(location.search);
window.got = [];
window.connects = [];
const client = new ParleyClient({ url: params.get("gateway"), namespace: "/agent", target: document.body,
  auth: async () => ({ token: params.get("token") }), backoffMs: 100, maxBackoffMs: 1000 });
client.on("message.created", (e) => got.push([e.conversation_id, e.seq, e.data.body, e.source]));
document.body.addEventListener("parley:connect", (e) => connects.push(e.detail.recovered));
window.client = client;
client.connect();
"""


async def test_agent_page_keeps_every_message_once_across_a_gateway_restart(
    live_stack: LiveStack, new_page: NewPage, settings: Any
) -> None:
    secret = settings.security.secret_key
    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    visitor = await make_visitor(project)
    token = visitor_token(project.id, visitor.uid, secret)[0]
    files = {
        "/client.html": ("text/html", PAGE),
        "/client-test.js": ("text/javascript", SCRIPT),
        "/parley-client.js": ("text/javascript", (ROOT / "static" / "js" / "parley-client.js").read_text()),
    }
    async with (
        host_site(live_stack.web_url, live_stack.realtime_url, project.public_key, files=files) as site,
        httpx.AsyncClient(base_url=live_stack.web_url, headers={"authorization": f"Bearer {token}"}) as rest,
    ):

        async def send(body: str) -> None:
            response = await rest.post(
                "/api/widget/v1/messages", json={"body": body, "client_msg_id": str(uuid.uuid4())}
            )
            assert response.status_code == 202, response.text

        page = await new_page()
        query = urlencode({"gateway": live_stack.realtime_url, "token": agent_token(user.id, secret)[0]})
        await page.goto(f"{site.origin}/client.html?{query}")
        try:
            await page.wait_for_function("() => window.connects && window.connects.length === 1")
        except Exception:
            raise AssertionError(f"{page.console_lines} {page.js_errors}") from None  # type: ignore[attr-defined]
        await send("m1")
        await page.wait_for_function("() => window.got.length === 1")
        assert await page.evaluate("() => client.emit('rtt', {}).then((a) => a.client_ack)") == ["ok"]

        live_stack.kill("realtime")
        for number in range(2, 7):  # stored while no gateway runs: only sync can bring them
            await send(f"m{number}")
        await asyncio.sleep(0.5)  # let the worker store them before the gateway is back
        live_stack.start("realtime")
        for number in range(7, 11):  # live while the page reconnects and syncs
            await send(f"m{number}")
        await page.wait_for_function("() => window.got.length >= 10", timeout=20_000)
        await asyncio.sleep(1)  # a duplicate would arrive within this
        got = await page.evaluate("() => window.got")
        assert sorted(seq for _, seq, _, _ in got) == list(range(1, 11)), got
        assert len(got) == 10, got
        assert {body for _, _, body, _ in got} == {f"m{n}" for n in range(1, 11)}
        assert "sync" in {source for *_, source in got}
        assert await page.evaluate("() => window.connects") == [False, True]


async def test_an_untracked_conversation_is_followed_from_its_first_live_message(
    live_stack: LiveStack, new_page: NewPage, settings: Any, redis: Redis
) -> None:
    """Issue #12: the first live message of a conversation the page does not track sets the floor
    just below it. Older history is the page's to load (no sync of the whole conversation for
    every row an inbox does not show), and a live message after a missed one is a gap that the
    client fills from that floor, exactly once."""
    secret = settings.security.secret_key
    project = await make_project()
    user = await make_user()
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    visitor = await make_visitor(project)
    conversation = await make_conversation(project, visitor)
    for seq in (1, 2, 3):  # stored before the page looks: history, not the client's to fetch
        await make_message(conversation, seq=seq, body=f"old {seq}")
    files = {
        "/client.html": ("text/html", PAGE),
        "/client-test.js": ("text/javascript", SCRIPT),
        "/parley-client.js": ("text/javascript", (ROOT / "static" / "js" / "parley-client.js").read_text()),
    }
    async with host_site(
        live_stack.web_url, live_stack.realtime_url, project.public_key, files=files
    ) as site:
        page = await new_page()
        query = urlencode({"gateway": live_stack.realtime_url, "token": agent_token(user.id, secret)[0]})
        await page.goto(f"{site.origin}/client.html?{query}")
        await page.wait_for_function("() => window.connects && window.connects.length === 1")

        async def live(seq: int) -> None:
            await make_message(conversation, seq=seq, body=f"m{seq}")
            await publish(redis, message_event(project.id, conversation.id, seq, visitor_uid=visitor.uid))

        await live(4)
        await page.wait_for_function("() => window.got.length === 1")
        assert await page.evaluate(f"() => client.floor({conversation.id})") == 4
        await make_message(conversation, seq=5, body="m5")  # stored, its live event lost
        await live(6)
        await page.wait_for_function("() => window.got.length >= 3")
        await page.evaluate("() => client.sync()")  # a duplicate would come from a second round
        got = await page.evaluate("() => window.got")
        assert [(seq, source) for _, seq, _, source in got] == [(4, "live"), (6, "live"), (5, "sync")], got
        assert await page.evaluate(f"() => client.floor({conversation.id})") == 6
