"""``screenshot.ready`` reaches every tab of the agent who asked, and no other agent, through the
real gateway process."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import httpx

from server.outbox.envelope import Envelope
from tests.realtime.conftest import GatewayProcess, connected, gateway, gateway_factory  # noqa: F401
from tests.realtime.helpers import agent_auth, publish
from tests.screenshots.conftest import RunningWorker, ScreenshotWorld, wait_done
from tests.screenshots.site import LoopbackSite

EVENTS = ["screenshot.ready", "screenshot.failed", "test.marker"]


async def test_screenshot_ready_goes_to_the_asking_agents_tabs_only(
    settings: Any,
    gateway: GatewayProcess,  # noqa: F811
    web: httpx.AsyncClient,
    world: ScreenshotWorld,
    worker: RunningWorker,
    site: LoopbackSite,
) -> None:
    await world.visit(f"{site.url}/plain?case=event")
    async with AsyncExitStack() as stack:
        tab1 = (
            await stack.enter_async_context(
                connected(gateway, "/agent", agent_auth(settings, world.agent_id), EVENTS)
            )
        )[1]
        tab2 = (
            await stack.enter_async_context(
                connected(gateway, "/agent", agent_auth(settings, world.agent_id), EVENTS)
            )
        )[1]
        other = (
            await stack.enter_async_context(
                connected(gateway, "/agent", agent_auth(settings, world.agent2_id), EVENTS)
            )
        )[1]

        response = await web.post(world.ask_path(), headers=world.headers("agent"))
        assert response.status_code == 202, response.text
        asked = response.json()
        for tab in (tab1, tab2):
            ready = await tab.wait_for(partial(tab.named, "screenshot.ready"), within=30)
            data = ready[0]["data"]  # the event's envelope: type, project_id, at, data
            assert ready[0]["type"] == "screenshot.ready"
            assert data["id"] == asked["id"]
            assert data["state"] == "ready"
            assert data["visitor_id"] == world.visitor_id
            assert data["href"] == asked["href"]
        image = await wait_done(web, asked["href"], world.headers())
        assert image.status_code == 200

        # A marker every agent receives after it: once it arrived, the screenshot event would have too.
        marker = Envelope(type="test.marker", project_id=world.project_id, at=time.time(), data={"marker": 1})
        await publish(world.redis, marker)
        await other.wait_for(lambda: other.named("test.marker"))
        assert other.named("screenshot.ready") == []

        # The failed render goes to the agent who asked for it: agent2 this time.
        await world.visit(f"{site.url}/redirect-private")
        failed = (await web.post(world.ask_path(), headers=world.headers("agent2"))).json()
        event = await other.wait_for(lambda: other.named("screenshot.failed"), within=30)
        assert event[0]["data"]["id"] == failed["id"]
        assert event[0]["data"]["code"] == "address_not_allowed"
        await publish(world.redis, marker)
        await tab1.wait_for(lambda: len(tab1.named("test.marker")) == 2)
        assert tab1.named("screenshot.failed") == []
