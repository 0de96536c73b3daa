"""DOM-snapshot screenshots end to end: an agent asks, the visitor is told, the image is ready.

A project that turned ``dom_snapshots`` on; a visitor signed in to the customer's site (the page
draws an account banner only then, so a signed-out URL render could not show it) with a form
filled in. What the widget sends is captured in the browser as it leaves: nothing the visitor
typed or chose, no hidden field, no script or handler reaches the server; the worker draws it
through the same renderer, cache and ``screenshot.ready`` event as a URL render.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.async_api import Page, Request, expect
from redis.asyncio import Redis

from server.redis_client import Keys
from tests.browser.conftest import LiveStack
from tests.browser.support import SCREENSHOTS, screenshot
from tests.browser.widget_support import panel_of, widget_world
from tests.screenshots.conftest import running_worker, with_screenshots

pytestmark = pytest.mark.browser

NewPage = Callable[..., Awaitable[Page]]

ACCOUNT = (255, 0, 170)
SECRETS = {
    "DEFAULT-SECRET": "a value the site wrote into an input",
    "TYPED-SECRET": "typed into a text input",
    "PASSWORD-SECRET": "typed into a password field",
    "NOTE-SECRET": "typed into a textarea",
    "PLAN-SECRET": "an option of a select (and the one chosen)",
    "EDITOR-SECRET": "typed into a contenteditable",
    "HIDDEN-SECRET": "a hidden input (a token)",
    "HANDLER-SECRET": "an onclick handler",
    "URL-SECRET": "a javascript: link",
}

# The customer's own script (the host page's CSP allows only its own files): a form, and an
# account banner styled by a constructed stylesheet, shown only to a signed-in visitor.
HOST_JS = """
const form = document.createElement("form");
form.innerHTML = `<label>Name <input id="holder" name="holder" value="DEFAULT-SECRET"></label>
<label>Password <input id="pw" type="password" name="pw"></label>
<input type="hidden" name="csrf" value="HIDDEN-SECRET">
<label>Note <textarea id="note" name="note"></textarea></label>
<label>Plan <select id="plan" name="plan"><option>basic</option><option>PLAN-SECRET</option></select></label>
<label><input type="checkbox" id="agree" name="agree"> I agree</label>
<button type="button" onclick="alert('HANDLER-SECRET')">Pay</button>
<a id="evil" href="javascript:alert('URL-SECRET')">a link</a>
<div id="editor" contenteditable="true"></div>`;
document.querySelector("main").append(form);
if (localStorage.getItem("signed-in")) {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(".account { display: block; height: 400px; background: rgb(255, 0, 170); color: #fff; }");
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  const account = document.createElement("div");
  account.className = "account";
  account.textContent = "Signed in as Kim";
  document.querySelector("main").prepend(account);
}
"""


async def _api_key(user_id: int) -> str:
    from server.accounts.tables import User
    from server.tenancy.apikeys import create_api_key
    from server.tenancy.queries import actor_for

    user = await User.objects().where(User.id == user_id).first()
    assert user is not None
    created = await create_api_key(
        await actor_for(user), name="t", project_id=None, read_only=False, expires_at=None
    )
    return created.secret


async def _until(condition: Callable[[], Awaitable[Any]], what: str, within: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while not (result := await condition()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return result


async def test_an_agent_gets_the_visitors_page_as_they_see_it_and_nothing_typed(
    live_stack_factory: Callable[..., LiveStack], new_page: NewPage, settings: Any, redis: Redis
) -> None:
    stack = live_stack_factory(SCREENSHOT_ALLOW_LOOPBACK="true")
    async with (
        widget_world(
            stack.web_url,
            stack.realtime_url,
            settings.security.secret_key,
            project_values={"dom_snapshots": True},
            extra_script=HOST_JS,
        ) as world,
        running_worker(with_screenshots(settings)) as renderer_worker,
    ):
        agent = world.online()
        page = await new_page()
        sent: list[str] = []

        def capture(request: Request) -> None:
            if "/api/widget/v1/snapshots/" in request.url and request.method == "POST":
                sent.append(request.post_data or "")

        page.on("request", capture)
        await page.goto(world.site.origin + "/")
        await page.evaluate("() => localStorage.setItem('signed-in', '1')")
        await panel_of(page, world.site.origin + "/other", open_panel=False)
        await expect(page.locator(".account")).to_have_text("Signed in as Kim")
        await page.fill("#holder", "TYPED-SECRET")
        await page.fill("#pw", "PASSWORD-SECRET")
        await page.fill("#note", "NOTE-SECRET")
        await page.select_option("#plan", "PLAN-SECRET")
        await page.check("#agree")
        await page.locator("#editor").press_sequentially("EDITOR-SECRET")

        from server.chat.tables import Visitor

        # The visitor this tab is (the first load's session may have been cut short by the second).
        key = f"parley:{world.project.public_key}"
        uid = await page.evaluate(f"() => JSON.parse(localStorage.getItem('{key}')).visitor_uid")
        visitor = await Visitor.select(Visitor.id, Visitor.uid).where(Visitor.uid == uid).first()
        assert visitor is not None
        await _until(lambda: redis.exists(Keys.visitor_location(world.project.id, uid)), "its page reported")
        headers = {"authorization": f"Bearer {await _api_key(world.user.id)}"}
        renders = renderer_worker.renderer.renders
        async with httpx.AsyncClient(base_url=stack.web_url, headers=headers) as api:
            asked = await api.post(f"/api/v1/projects/{world.project.id}/visitors/{visitor['id']}/screenshot")
            assert asked.status_code == 202, asked.text
            handle = asked.json()
            assert handle["mode"] == "snapshot" and handle["state"] == "queued"

            notice = page.locator("parley-widget .snapshot-notice")
            await expect(notice).to_contain_text("took a snapshot of this page")
            await screenshot(page, "widget-snapshot-notice")

            async def image_ready() -> httpx.Response | None:
                response = await api.get(handle["href"])
                assert response.status_code in (200, 202), response.text
                return response if response.status_code == 200 else None

            response = await _until(image_ready, "the image", within=45)
        assert response.headers["content-type"] == "image/jpeg"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / "screenshot-from-dom-snapshot.jpg").write_bytes(response.content)  # for a reviewer
        assert response.headers["cache-control"].startswith("private")
        image = Image.open(io.BytesIO(response.content)).convert("RGB")
        assert image.size == (1280, 800)
        pixel = image.getpixel((640, 150))  # the signed-in banner: what a URL render cannot show
        assert isinstance(pixel, tuple) and all(
            abs(int(a) - b) <= 16 for a, b in zip(pixel, ACCOUNT, strict=True)
        ), pixel
        assert renderer_worker.renderer.renders == renders + 1
        ready = await agent.wait_for(lambda: agent.named("screenshot.ready"))
        assert ready[0]["data"]["id"] == handle["id"]

        # What reached the server: the page's text and look, nothing the visitor typed or chose.
        assert len(sent) == 1
        body = json.loads(sent[0])
        html = body["html"]
        leaked = {secret: why for secret, why in SECRETS.items() if secret in sent[0]}
        assert leaked == {}, leaked
        assert "Signed in as Kim" in html and "rgb(255, 0, 170)" in html
        assert html.count("••••••") >= 5  # text, password, textarea, select, contenteditable
        lowered = html.lower()
        assert "<script" not in lowered and "onclick" not in lowered and "javascript:" not in lowered
        assert "parley-widget" not in lowered
