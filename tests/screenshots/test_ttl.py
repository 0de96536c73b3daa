"""The cache's TTL: once it passes, the image is gone from Redis and the next request renders again."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from server.redis_client import Keys
from tests.screenshots.conftest import RunningWorker, ScreenshotWorld, wait_done
from tests.screenshots.site import LoopbackSite
from tests.screenshots.test_render import _digest, ask, decode


@pytest.fixture(scope="module")
def worker_overrides() -> dict[str, Any]:
    return {"cache_seconds": 2}


async def test_the_image_expires_with_the_ttl_and_is_rendered_again(
    web_factory: Any, world: ScreenshotWorld, worker: RunningWorker, site: LoopbackSite, redis: Redis
) -> None:
    await world.visit(f"{site.url}/plain?case=ttl")
    async with web_factory(cache_seconds=2) as web:
        renders = worker.renderer.renders
        first = (await ask(web, world)).json()
        image = decode(await wait_done(web, first["href"], world.headers()))
        assert image.size == (1280, 800)
        key = Keys.screenshot_image(world.project_id, _digest(site, "/plain?case=ttl"))
        assert 0 < await redis.ttl(key) <= 2

        deadline = time.monotonic() + 30
        while await redis.exists(key):  # Redis expires it; no fixed sleep
            assert time.monotonic() < deadline, "the image never expired"
            await asyncio.sleep(0.1)
        expired = await web.get(first["href"], headers=world.headers())
        assert expired.status_code == 404
        assert expired.json()["code"] == "screenshot_expired"

        again = (await ask(web, world)).json()
        assert again["state"] == "queued"  # not a cache hit
        decode(await wait_done(web, again["href"], world.headers()))
        assert worker.renderer.renders == renders + 2
        assert site.hits["/plain?case=ttl"] == 2
