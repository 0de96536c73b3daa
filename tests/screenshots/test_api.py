"""The screenshot routes' refusals: other tenants, bad input, unsafe URLs, no renderer, rate limits.

None of these needs a render, so no worker runs here except where a test starts one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from server.redis_client import Keys
from server.screenshots import ratelimit_rules, services
from server.screenshots.urls import cache_digest, normalise_url
from tests.screenshots.conftest import ScreenshotWorld, running_worker, with_screenshots
from tests.screenshots.site import LoopbackSite

WebFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


async def pretend_renderer(redis: Redis) -> None:
    """A renderer report, so the requests below get past the availability check to what they test."""
    await services.report_renderer(redis, "test-renderer", None)


async def test_an_agent_of_another_project_gets_404(
    web: httpx.AsyncClient, world: ScreenshotWorld, site: LoopbackSite, redis: Redis
) -> None:
    await pretend_renderer(redis)
    await world.visit(f"{site.url}/plain")
    asked = await web.post(world.ask_path(), headers=world.headers("agent"))
    assert asked.status_code == 202, asked.text
    href = asked.json()["href"]

    outsider = world.headers("outsider")
    assert (await web.post(world.ask_path(), headers=outsider)).status_code == 404
    assert (await web.get(href, headers=outsider)).status_code == 404
    # Through their own project: the handle and the visitor belong to another project.
    own_href = href.replace(f"/projects/{world.project_id}/", f"/projects/{world.other_project_id}/")
    response = await web.get(own_href, headers=outsider)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    response = await web.post(world.ask_path(project_id=world.other_project_id), headers=outsider)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert (await web.post(world.ask_path(), headers={})).status_code == 401


async def test_bad_input_gets_a_clear_4xx(
    web: httpx.AsyncClient, world: ScreenshotWorld, redis: Redis
) -> None:
    await pretend_renderer(redis)
    response = await web.post(world.ask_path(), json={"viewport": "tv"}, headers=world.headers())
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    response = await web.post(world.ask_path(), json={"extra": 1}, headers=world.headers())
    assert response.status_code == 400
    response = await web.post(world.ask_path(), headers=world.headers())
    assert response.status_code == 409 and response.json()["code"] == "no_current_page"
    base = f"/api/v1/projects/{world.project_id}/screenshots/"
    assert (await web.get(base + "s_unknown", headers=world.headers())).status_code == 404
    assert (await web.get(base + "not-a-handle", headers=world.headers())).status_code == 400


@pytest.mark.parametrize(
    ("url", "loopback", "code", "says"),
    [
        ("http://169.254.169.254/latest/meta-data/", True, "address_not_allowed", "metadata"),
        ("{site}/plain", False, "address_not_allowed", "loopback"),
        ("http://localhost:8000/account", False, "address_not_allowed", "loopback"),
        ("file:///etc/passwd", True, "url_not_allowed", "file"),
        ("javascript:alert(1)", True, "url_not_allowed", "javascript"),
        ("https://evil.example/", True, "origin_not_allowed", "allowed origins"),
        ("http://user:pw@169.254.169.254/", True, "url_not_allowed", "credentials"),
    ],
)
async def test_unsafe_pages_are_refused_before_any_render(
    web_factory: WebFactory,
    world: ScreenshotWorld,
    site: LoopbackSite,
    redis: Redis,
    url: str,
    loopback: bool,
    code: str,
    says: str,
) -> None:
    await pretend_renderer(redis)
    await world.visit(url.format(site=site.url))
    async with web_factory(allow_loopback=loopback) as web:
        response = await web.post(world.ask_path(), headers=world.headers())
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert says in response.json()["message"]
    assert await redis.keys("saq:job:screenshots-queue:*") == []  # nothing was queued


async def test_without_a_renderer_the_feature_answers_503_and_the_rest_works(
    web: httpx.AsyncClient, world: ScreenshotWorld, site: LoopbackSite
) -> None:
    await world.visit(f"{site.url}/plain")
    response = await web.post(world.ask_path(), headers=world.headers())
    assert response.status_code == 503
    assert response.json()["code"] == "screenshots_unavailable"
    assert "no screenshot worker is running" in response.json()["message"]
    visitors = await web.get(f"/api/v1/projects/{world.project_id}/visitors", headers=world.headers())
    assert visitors.status_code == 200


async def test_a_worker_without_chromium_says_why(
    settings: Any, web: httpx.AsyncClient, world: ScreenshotWorld, site: LoopbackSite, redis: Redis
) -> None:
    await world.visit(f"{site.url}/plain")
    missing = with_screenshots(settings, chromium_path="/nonexistent/chromium")
    async with running_worker(missing) as running:
        assert running.renderer.problem is not None
        await running.report(redis)
        response = await web.post(world.ask_path(), headers=world.headers())
    assert response.status_code == 503
    assert response.json()["code"] == "screenshots_unavailable"
    assert "/nonexistent/chromium" in response.json()["message"]


async def test_a_stale_renderer_report_does_not_count(
    web: httpx.AsyncClient, world: ScreenshotWorld, site: LoopbackSite, redis: Redis
) -> None:
    await world.visit(f"{site.url}/plain")
    stale = {"ok": True, "reason": None, "until": time.time() - 1}
    await redis.hset(Keys.SCREENSHOT_RENDERERS, "gone", msgspec.json.encode(stale))
    response = await web.post(world.ask_path(), headers=world.headers())
    assert response.status_code == 503


async def test_requests_are_rate_limited_per_agent(
    web: httpx.AsyncClient, world: ScreenshotWorld, site: LoopbackSite, redis: Redis
) -> None:
    await world.visit("https://evil.example/")  # refused at once: no render needed to count requests
    await pretend_renderer(redis)
    statuses = [
        (await web.post(world.ask_path(), headers=world.headers())).status_code
        for _ in range(ratelimit_rules.PER_AGENT.limit + 1)
    ]
    assert statuses[:-1] == [422] * ratelimit_rules.PER_AGENT.limit
    assert statuses[-1] == 429
    other_agent = await web.post(world.ask_path(), headers=world.headers("agent2"))
    assert other_agent.status_code == 422  # the limit is the agent's, not the project's


async def test_a_handle_whose_render_vanished_reads_as_lost(
    web_factory: Any, world: ScreenshotWorld, site: LoopbackSite, redis: Redis
) -> None:
    """No worker runs in this module: the lock vanishing without an outcome is what a worker
    dying mid-render leaves once the lock expires."""
    await pretend_renderer(redis)
    await world.visit(f"{site.url}/plain?case=lost")
    async with web_factory() as web:
        asked = (await web.post(world.ask_path(), headers=world.headers())).json()
        assert (await web.get(asked["href"], headers=world.headers())).json()["state"] == "queued"
        await redis.delete(
            Keys.screenshot_render(
                world.project_id, cache_digest(normalise_url(f"{site.url}/plain?case=lost"), "desktop")
            )
        )
        lost = await web.get(asked["href"], headers=world.headers())
    assert lost.status_code == 422
    assert lost.json()["code"] == "render_lost"
