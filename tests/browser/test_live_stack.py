"""The browser-test infrastructure itself: a live stack, Chromium, screenshots and axe-core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page

from tests.browser.conftest import LiveStack
from tests.browser.support import SCREENSHOTS, assert_accessible, axe_violations, screenshot
from tests.processes import http_status

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_sign_in_page_renders_is_accessible_and_is_photographed(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]], scheme: str
) -> None:
    page = await new_page(color_scheme=scheme)
    response = await page.goto(f"{live_stack.web_url}/console/login")
    assert response is not None and response.status == 200
    await page.get_by_label("E-mail").wait_for()
    await assert_accessible(page)
    path = await screenshot(page, "console-login")
    assert path == SCREENSHOTS / f"console-login-{scheme}.png" and path.stat().st_size > 1000


async def test_axe_reports_a_serious_violation(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    """The check can fail: an image without alt text and an unlabelled input are caught."""
    page = await new_page()
    await page.goto(f"{live_stack.web_url}/console/login")
    await page.evaluate(
        "() => { const i = document.createElement('img'); i.src = 'x.png'; document.body.append(i);"
        " document.body.append(document.createElement('input')); }"
    )
    ids = {violation["id"] for violation in await axe_violations(page)}
    assert {"image-alt", "label"} <= ids, ids


def test_realtime_restarts_on_its_port(live_stack: LiveStack) -> None:
    before = live_stack.processes["realtime"].pid
    live_stack.restart("realtime")
    assert live_stack.processes["realtime"].pid != before
    assert http_status(f"{live_stack.realtime_url}/healthz") == 200
    assert "listening on" in live_stack.log("realtime")
