"""A visitor's page rendered by a real Chromium in the screenshot worker, through web and Redis."""

from __future__ import annotations

import asyncio
import io

import httpx
from PIL import Image
from redis.asyncio import Redis

from server.redis_client import Keys
from server.screenshots.urls import cache_digest, normalise_url
from tests.screenshots.conftest import RunningWorker, ScreenshotWorld, wait_done
from tests.screenshots.site import PAINT, LoopbackSite


def decode(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"].startswith("private, max-age=")
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def paints(image: Image.Image, colour: tuple[int, int, int], at: tuple[int, int]) -> bool:
    pixel = image.convert("RGB").getpixel(at)
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= 12 for a, b in zip(pixel, colour, strict=True))


async def ask(
    web: httpx.AsyncClient, world: ScreenshotWorld, who: str = "agent", **body: str
) -> httpx.Response:
    return await web.post(world.ask_path(), json=body or None, headers=world.headers(who))


async def test_a_loopback_page_renders_and_the_second_request_is_a_cache_hit(
    web: httpx.AsyncClient, world: ScreenshotWorld, worker: RunningWorker, site: LoopbackSite
) -> None:
    await world.visit(f"{site.url}/plain?case=hit#section")
    renders = worker.renderer.renders
    asked = await ask(web, world)
    assert asked.status_code == 202, asked.text
    handle = asked.json()
    assert handle["state"] == "queued"
    assert handle["url"] == f"{site.url}/plain?case=hit"  # normalised: no fragment
    image = decode(await wait_done(web, handle["href"], world.headers()))
    assert image.format == "JPEG"
    assert image.size == (1280, 800)
    assert paints(image, PAINT, (640, 600))
    assert worker.renderer.renders == renders + 1
    assert site.hits["/plain?case=hit"] == 1

    again = await ask(web, world, who="agent2")
    assert again.status_code == 202
    assert again.json()["state"] == "ready"
    assert again.json()["id"] != handle["id"]
    second = await web.get(again.json()["href"], headers=world.headers("agent2"))
    assert decode(second).size == (1280, 800)
    assert worker.renderer.renders == renders + 1  # served from Redis
    assert site.hits["/plain?case=hit"] == 1


async def test_ten_concurrent_requests_cause_one_render(
    web: httpx.AsyncClient, world: ScreenshotWorld, worker: RunningWorker, site: LoopbackSite
) -> None:
    await world.visit(f"{site.url}/plain?burst=1")
    renders = worker.renderer.renders
    asked = await asyncio.gather(*(ask(web, world, who=("agent", "agent2")[i % 2]) for i in range(10)))
    assert [response.status_code for response in asked] == [202] * 10
    handles = [response.json() for response in asked]
    assert len({handle["id"] for handle in handles}) == 10
    results = await asyncio.gather(*(wait_done(web, handle["href"], world.headers()) for handle in handles))
    assert all(decode(result).size == (1280, 800) for result in results)
    assert worker.renderer.renders == renders + 1
    assert site.hits["/plain?burst=1"] == 1


async def test_mobile_viewport(
    web: httpx.AsyncClient, world: ScreenshotWorld, worker: RunningWorker, site: LoopbackSite
) -> None:
    await world.visit(f"{site.url}/plain")
    asked = await ask(web, world, viewport="mobile")
    assert asked.json()["viewport"] == "mobile"
    image = decode(await wait_done(web, asked.json()["href"], world.headers()))
    assert image.size == (390, 844)
    assert paints(image, PAINT, (200, 700))


async def test_a_redirect_to_a_private_address_is_refused(
    web: httpx.AsyncClient, world: ScreenshotWorld, worker: RunningWorker, site: LoopbackSite
) -> None:
    await world.visit(f"{site.url}/redirect-private")
    asked = await ask(web, world)
    response = await wait_done(web, asked.json()["href"], world.headers())
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "address_not_allowed"
    assert "169.254.169.254" in response.json()["message"]


async def test_subresources_on_private_addresses_are_refused_and_the_page_still_renders(
    web: httpx.AsyncClient, world: ScreenshotWorld, worker: RunningWorker, site: LoopbackSite, redis: Redis
) -> None:
    await world.visit(f"{site.url}/private-subresources")
    asked = await ask(web, world)
    image = decode(await wait_done(web, asked.json()["href"], world.headers()))
    assert paints(image, PAINT, (640, 600))
    render_id = await redis.hget(Keys.screenshot_handle(world.project_id, asked.json()["id"]), "render")
    assert isinstance(render_id, bytes)
    job = await worker.worker.queue.job(f"screenshot:{world.project_id}:{render_id.decode()}")
    assert job is not None
    await job.refresh(until_complete=10)  # the waiters get the image just before the job ends
    assert job.result is not None
    assert job.result["refused"] == 4, job.result  # the stylesheet, the script and both images


async def test_a_page_over_the_size_limit_fails(
    web: httpx.AsyncClient, world: ScreenshotWorld, worker: RunningWorker, site: LoopbackSite
) -> None:
    await world.visit(f"{site.url}/big")
    asked = await ask(web, world)
    response = await wait_done(web, asked.json()["href"], world.headers())
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "page_too_large"


async def test_a_deleted_projects_screenshot_keys_are_cleared(
    web: httpx.AsyncClient, world: ScreenshotWorld, worker: RunningWorker, site: LoopbackSite, redis: Redis
) -> None:
    from server.tenancy.services import clear_project_keys

    await world.visit(f"{site.url}/plain")
    asked = await ask(web, world)
    decode(await wait_done(web, asked.json()["href"], world.headers()))
    pattern = f"parley:{{p:{world.project_id}}}:screenshot:*"
    assert len([key async for key in redis.scan_iter(match=pattern)]) >= 2  # the image and the handle
    await clear_project_keys(redis, world.project_id)
    assert [key async for key in redis.scan_iter(match=pattern)] == []
    assert (await web.get(asked.json()["href"], headers=world.headers())).status_code == 404


def _digest(site: LoopbackSite, path: str, viewport: str = "desktop") -> str:
    return cache_digest(normalise_url(site.url + path), viewport)


async def test_the_image_is_cached_under_the_normalised_url_and_viewport(
    web: httpx.AsyncClient, world: ScreenshotWorld, worker: RunningWorker, site: LoopbackSite, redis: Redis
) -> None:
    await world.visit(site.url.replace("http://", "HTTP://") + "/plain")
    asked = await ask(web, world)
    decode(await wait_done(web, asked.json()["href"], world.headers()))
    key = Keys.screenshot_image(world.project_id, _digest(site, "/plain"))
    ttl = await redis.ttl(key)
    assert 0 < ttl <= 600
