"""DOM-snapshot screenshots at the API: off by default, refused with a clear code, and the
widget's answer checked (whose request, once, how large). The whole flow in a browser, with what
the widget sends, is tests/browser/test_widget_snapshot.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import msgspec
from redis.asyncio import Redis

from server.accounts.tokens import visitor_token
from server.outbox.envelope import project_channel
from server.redis_client import Keys
from server.screenshots import services
from server.tenancy.tables import Project
from tests import factories as f
from tests.screenshots.conftest import ScreenshotWorld
from tests.screenshots.site import LoopbackSite

WebFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


async def _enable(world: ScreenshotWorld, on: bool = True) -> str:
    await Project.update({Project.dom_snapshots: on}).where(Project.id == world.project_id)
    row = await Project.select(Project.public_key).where(Project.id == world.project_id).first()
    assert row is not None
    return str(row["public_key"])


async def _connected(world: ScreenshotWorld, uid: str | None = None) -> None:
    """What the gateway records for a live widget socket (its heartbeat expiry, in ms)."""
    key = Keys.presence_sockets(world.project_id, "visitor", uid or world.visitor_uid)
    await world.redis.zadd(key, {"node:1": int(time.time() * 1000) + 60_000})


@contextlib.asynccontextmanager
async def _requests_to_visitors(redis: Redis, project_id: int) -> AsyncIterator[list[dict[str, Any]]]:
    """The ``screenshot.requested`` events web publishes for the project's visitors."""
    seen: list[dict[str, Any]] = []
    pubsub = redis.pubsub()
    await pubsub.subscribe(project_channel(project_id))

    async def read() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                envelope = msgspec.json.decode(message["data"])
                if envelope["type"] == "screenshot.requested":
                    seen.append(envelope["data"])

    reader = asyncio.create_task(read())
    try:
        yield seen
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _wait_for(seen: list[dict[str, Any]], count: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while len(seen) < count:
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.02)
    return seen[count - 1]


async def test_snapshots_are_off_by_default_and_asking_for_one_then_is_refused(
    web: httpx.AsyncClient, world: ScreenshotWorld, site: LoopbackSite, redis: Redis
) -> None:
    await services.report_renderer(redis, "test-renderer", None)
    await world.visit(f"{site.url}/plain?case=off")
    await _connected(world)
    project = await web.get(f"/api/v1/projects/{world.project_id}", headers=world.headers())
    assert project.json()["dom_snapshots"] is False
    refused = await web.post(world.ask_path(), json={"mode": "snapshot"}, headers=world.headers())
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "snapshots_disabled"
    assert "settings" in refused.json()["message"]
    default = await web.post(world.ask_path(), headers=world.headers())
    assert default.status_code == 202 and default.json()["mode"] == "url"

    await _enable(world)
    project = await web.get(f"/api/v1/projects/{world.project_id}", headers=world.headers())
    assert project.json()["dom_snapshots"] is True
    asked = await web.post(world.ask_path(), json={"mode": "url"}, headers=world.headers())
    assert asked.status_code == 202 and asked.json()["mode"] == "url"  # the URL mode stays available


async def test_a_snapshot_needs_the_visitors_widget_online(
    web: httpx.AsyncClient, world: ScreenshotWorld, site: LoopbackSite, redis: Redis
) -> None:
    await services.report_renderer(redis, "test-renderer", None)
    await _enable(world)
    await world.visit(f"{site.url}/plain?case=offline")
    offline = await web.post(world.ask_path(), headers=world.headers())
    assert offline.status_code == 409 and offline.json()["code"] == "visitor_offline"


async def test_the_widgets_answer_is_checked_and_used_once(
    web_factory: WebFactory, world: ScreenshotWorld, site: LoopbackSite, redis: Redis, settings: Any
) -> None:
    await services.report_renderer(redis, "test-renderer", None)
    public_key = await _enable(world)
    await world.visit(f"{site.url}/plain?case=answer")
    await _connected(world)
    project = await Project.objects().where(Project.id == world.project_id).first()
    assert project is not None
    other = await f.make_visitor(project)
    secret = settings.security.secret_key
    own = {
        "authorization": f"Bearer {visitor_token(world.project_id, world.visitor_uid, secret, public_key=public_key)[0]}"
    }
    stranger = {
        "authorization": f"Bearer {visitor_token(world.project_id, other.uid, secret, public_key=public_key)[0]}"
    }
    async with (
        web_factory(snapshot_max_bytes=10_000) as web,
        _requests_to_visitors(redis, world.project_id) as seen,
    ):
        asked = await web.post(world.ask_path(), headers=world.headers())
        assert asked.status_code == 202 and asked.json()["mode"] == "snapshot", asked.text
        request = await _wait_for(seen, 1)
        assert request["visitor_uid"] == world.visitor_uid and request["max_bytes"] == 10_000
        path = f"/api/widget/v1/snapshots/{request['snapshot_id']}"

        wrong = await web.post(path, json={"html": "<p>x</p>"}, headers=stranger)
        assert wrong.status_code == 404 and wrong.json()["code"] == "snapshot_not_requested"
        empty = await web.post(path, json={}, headers=own)
        assert empty.status_code == 422
        large = await web.post(path, json={"html": "<p>" + "x" * 10_001 + "</p>"}, headers=own)
        assert large.status_code == 422 and large.json()["code"] == "snapshot_too_large"
        failed = await web.get(asked.json()["href"], headers=world.headers())
        assert failed.status_code == 422 and failed.json()["code"] == "snapshot_too_large"
        again = await web.post(path, json={"html": "<p>x</p>"}, headers=own)
        assert again.status_code == 404  # one answer per request

        retry = await web.post(world.ask_path(), headers=world.headers())
        assert retry.status_code == 202 and retry.json()["state"] == "queued"
        second = await _wait_for(seen, 2)
        accepted = await web.post(
            f"/api/widget/v1/snapshots/{second['snapshot_id']}", json={"html": "<p>the page</p>"}, headers=own
        )
        assert accepted.status_code == 202 and accepted.json() == {"accepted": True}
    stored = await redis.keys(Keys.screenshot_snapshot(world.project_id, "*"))
    assert len(stored) == 1 and await redis.get(stored[0]) == b"<p>the page</p>"
    assert len(await redis.keys("saq:job:screenshots-queue:*")) == 1  # its render is queued
