"""Who may show the widget: a disallowed origin gets nothing; a hostile allowed page cannot break it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect
from redis.asyncio import Redis

from server.chat.tables import Visitor
from server.tenancy import services
from tests.browser.conftest import LiveStack
from tests.browser.support import screenshot
from tests.browser.widget_support import panel_of, type_and_send, widget_world

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]


async def test_disallowed_origin_shows_nothing_and_says_why_once(
    live_stack: LiveStack, new_page: NewPage, settings: Any
) -> None:
    async with widget_world(
        live_stack.web_url, live_stack.realtime_url, settings.security.secret_key, allowed=False
    ) as world:
        page = await new_page()
        sockets: list[str] = []
        page.on("websocket", lambda socket: sockets.append(socket.url))
        refused = page.wait_for_event("console", lambda m: m.type == "error" and "Parley" in m.text)
        await page.goto(world.site.origin + "/")
        message = await refused
        assert "not an allowed origin" in message.text and world.site.origin in message.text
        await page.wait_for_load_state("networkidle")
        assert await page.locator("parley-widget").count() == 0
        parley_lines = [line for line in page.console_lines if "Parley" in line]  # type: ignore[attr-defined]
        assert len(parley_lines) == 1, parley_lines
        assert await Visitor.count().where(Visitor.project == world.project.id) == 0  # no session either
        assert sockets == []  # and no socket


async def test_a_rotated_key_takes_the_widget_off_the_page_with_one_line(
    live_stack: LiveStack, new_page: NewPage, settings: Any, redis: Redis
) -> None:
    """A returning visitor (session and token in localStorage) on a page that still carries the
    old key: the launcher drawn from the saved session goes, no socket opens, one line says why."""
    async with widget_world(
        live_stack.web_url, live_stack.realtime_url, settings.security.secret_key
    ) as world:
        page = await new_page()
        panel = await panel_of(page, world.site.origin + "/")
        await type_and_send(panel, "Before the rotation")
        await world.online().wait_for(lambda: world.online().messages("visitor"))
        old_key = world.project.public_key
        stored = await page.evaluate(f"() => localStorage.getItem('parley:{old_key}')")
        assert stored and "token" in stored

        await services.rotate_widget_key(redis, world.project.id)
        sockets: list[str] = []
        page.on("websocket", lambda socket: sockets.append(socket.url))
        lines_before = len(page.console_lines)  # type: ignore[attr-defined]
        refused = page.wait_for_event("console", lambda m: m.type == "error" and "Parley" in m.text)
        await page.reload()
        message = await refused
        assert old_key in message.text and "rotated" in message.text, message.text
        await page.wait_for_load_state("networkidle")
        assert await page.locator("parley-widget").count() == 0
        new_lines = page.console_lines[lines_before:]  # type: ignore[attr-defined]
        assert len([line for line in new_lines if "Parley" in line]) == 1, new_lines
        assert sockets == []
        assert await page.evaluate(f"() => localStorage.getItem('parley:{old_key}')") is None
        await screenshot(page, "widget-rotated-key")


async def test_hostile_host_page_with_strict_csp(
    live_stack: LiveStack, new_page: NewPage, settings: Any
) -> None:
    """`* { all: unset !important }`, a max z-index cover, rules aimed at the element itself,
    and a CSP without 'unsafe-inline' or 'unsafe-eval': the widget still shows and works."""
    async with widget_world(
        live_stack.web_url, live_stack.realtime_url, settings.security.secret_key, hostile=True
    ) as world:
        page = await new_page()
        csp_errors: list[str] = []
        page.on(
            "console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None
        )
        panel = await panel_of(page, world.site.origin + "/")
        box = await page.locator("parley-widget .launcher").bounding_box()
        assert box is not None and box["width"] >= 50 and box["height"] >= 50
        await type_and_send(panel, "Still here?")
        got = await world.online().wait_for(lambda: world.online().messages("visitor"))
        assert got[0]["body"] == "Still here?"
        await expect(panel.locator(".message--visitor")).to_have_attribute("data-state", "delivered")
        style = await page.evaluate(
            """() => { const p = document.querySelector('parley-widget').shadowRoot.querySelector('.panel');
                       const s = getComputedStyle(p); return [s.display, s.position, s.backgroundColor]; }"""
        )
        assert style == ["flex", "absolute", "rgb(255, 255, 255)"], style
        assert not csp_errors, csp_errors
        await screenshot(page, "widget-hostile-page")


async def test_full_screen_on_a_phone_and_dark_scheme(
    live_stack: LiveStack, new_page: NewPage, settings: Any
) -> None:
    async with widget_world(
        live_stack.web_url, live_stack.realtime_url, settings.security.secret_key
    ) as world:
        page = await new_page(color_scheme="dark", viewport={"width": 375, "height": 667})
        panel = await panel_of(page, world.site.origin + "/")
        # The panel rises into place (0.18 s, prefers-reduced-motion permitting): measure it there.
        await panel.evaluate("panel => Promise.all(panel.getAnimations().map(a => a.finished))")
        box = await panel.bounding_box()
        assert box is not None and {key: round(value) for key, value in box.items()} == {
            "x": 0,
            "y": 0,
            "width": 375,
            "height": 667,
        }, box
        await expect(panel.locator("#parley-input")).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(panel).to_be_hidden()
        await expect(page.locator("parley-widget .launcher")).to_be_focused()
        await page.locator("parley-widget .launcher").click()
        await screenshot(page, "widget-phone")
