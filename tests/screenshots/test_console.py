"""The inbox panel's button: an agent asks for the visitor's page and the slot shows the image."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx

from tests import factories as f
from tests.console.helpers import HTMX, post, sign_in
from tests.screenshots.conftest import RunningWorker, ScreenshotWorld
from tests.screenshots.site import LoopbackSite


async def test_the_panel_button_shows_the_visitors_page(
    web: httpx.AsyncClient, world: ScreenshotWorld, worker: RunningWorker, site: LoopbackSite, redis: Any
) -> None:
    from server.accounts.tables import User
    from server.chat.tables import Visitor
    from server.tenancy.tables import Project

    agent = await User.objects().where(User.id == world.agent_id).first()
    project = await Project.objects().where(Project.id == world.project_id).first()
    visitor = await Visitor.objects().where(Visitor.id == world.visitor_id).first()
    assert agent is not None and project is not None and visitor is not None
    conversation = await f.make_conversation(project, visitor)
    await world.visit(f"{site.url}/plain?case=console")
    csrf = await sign_in(web, agent.email)
    base = f"/console/projects/{world.project_id}/inbox/{conversation.id}"

    panel = await web.get(base + "/panel", headers=HTMX)
    assert panel.status_code == 200
    assert "data-screenshot-request" in panel.text and 'hx-post="' + base + '/screenshot"' in panel.text

    asked = await post(web, base + "/screenshot", csrf, {"viewport": "desktop"}, headers=HTMX)
    assert asked.status_code == 200, asked.text
    assert "Rendering the visitor" in asked.text
    state_url = re.search(r'hx-get="([^"]+)"', asked.text)
    assert state_url is not None

    deadline = time.monotonic() + 30
    while "Rendering the visitor" in (slot := await web.get(state_url.group(1), headers=HTMX)).text:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    image_src = re.search(r'<img class="screenshot-slot__image" src="([^"]+)"', slot.text)
    assert image_src is not None, slot.text
    image = await web.get(image_src.group(1))  # the console's session cookie reads the API handle
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"

    await world.visit("https://evil.example/")
    refused = await post(web, base + "/screenshot", csrf, {"viewport": "desktop"}, headers=HTMX)
    assert "allowed origins" in refused.text
