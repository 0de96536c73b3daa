"""The screenshot worker: ``saq tasks.screenshots.settings`` (the Procfile's ``screenshots``).

It consumes ``screenshots-queue`` only, so renders (up to 10 s each) never hold a slot of
``live-chat-events-queue``. One Chromium per process (:class:`server.screenshots.renderer.Renderer`),
started at ``startup``; a background loop tells Redis every few seconds whether it can render,
which is what web's 503 ``screenshots_unavailable`` answers from. Without Chromium the worker
still runs and says why; the rest of Parley does not depend on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import sys
from typing import Any

import msgspec
from redis.asyncio import Redis
from saq.types import Context, SettingsDict

from server.errors import ErrorCode
from server.queue import make_queue
from server.redis_client import make_redis
from server.screenshots import services
from server.screenshots.renderer import Renderer, RenderFailed
from server.screenshots.schemas import RenderJob
from server.settings import Settings, SettingsError, configure_logging, get_settings

REPORT_INTERVAL_SECONDS = 10.0
log = logging.getLogger(__name__)


class ScreenshotContext(Context, total=False):
    redis: Redis
    renderer: Renderer
    settings: Settings
    worker_id: str
    reporter: asyncio.Task[None]


def _load_settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as error:
        print(f"parley screenshots: {error}", file=sys.stderr)
        raise SystemExit(2) from None


async def render_screenshot(ctx: ScreenshotContext, *, job: dict[str, Any]) -> dict[str, Any]:
    """Render one (URL, viewport) and hand the result to every handle waiting for it.

    Idempotent: a duplicate job finds the image cached and only resolves the waiters. A failure
    is recorded on the waiters (their ``GET`` says why) and not retried: the agent asks again.
    """
    render = msgspec.convert(job, RenderJob)
    redis, renderer, settings = ctx["redis"], ctx["renderer"], ctx["settings"].screenshots
    started = await services.start_render(redis, render, settings.timeout_ms)
    if started == "other":
        return {"skipped": 1}  # a newer render of the page holds the lock and serves the waiters
    if started == "cached":
        waiters = await services.finish_render(redis, render, None, settings.cache_seconds)
        return {"cached": 1, "waiters": len(waiters)}
    try:
        if render.snapshot:
            page = await services.take_snapshot(redis, render)
            if page is None:
                raise RenderFailed(
                    ErrorCode.SNAPSHOT_NOT_RECEIVED, "The visitor's snapshot expired before it was drawn."
                )
            rendered = await renderer.render_snapshot(page, render.url, render.viewport)
        else:
            rendered = await renderer.render(render.url, render.viewport)
    except RenderFailed as failure:
        waiters = await services.fail_render(redis, render, failure.code, failure.message)
        log.info("screenshot of %s failed (%s): %s", render.url, failure.code, failure.message)
        return {"failed": 1, "code": failure.code, "waiters": len(waiters)}
    except Exception as error:
        log.exception("screenshot of %s failed", render.url)
        waiters = await services.fail_render(
            redis, render, ErrorCode.RENDER_ERROR, f"The render failed: {type(error).__name__}"
        )
        return {"failed": 1, "code": ErrorCode.RENDER_ERROR, "waiters": len(waiters)}
    waiters = await services.finish_render(redis, render, rendered.image, settings.cache_seconds)
    return {
        "rendered": 1,
        "waiters": len(waiters),
        "bytes": len(rendered.image),
        "downloaded": rendered.bytes_downloaded,
        "refused": len(rendered.refused),
        "ms": round(rendered.seconds * 1000),
    }


async def _report_forever(ctx: ScreenshotContext) -> None:
    while True:
        try:
            await services.report_renderer(ctx["redis"], ctx["worker_id"], ctx["renderer"].problem)
        except Exception as error:  # Redis away: say it again next round
            log.warning("screenshot renderer report failed (%s): %s", type(error).__name__, error)
        await asyncio.sleep(REPORT_INTERVAL_SECONDS)


def make_startup(settings: Settings, renderer_factory: Any = Renderer) -> Any:
    async def startup(ctx: ScreenshotContext) -> None:
        configure_logging(settings)
        if settings.screenshots.allow_loopback:
            log.warning(
                "SCREENSHOT_ALLOW_LOOPBACK is on: renders may reach loopback addresses (development only)"
            )
        ctx["settings"] = settings
        ctx["redis"] = make_redis(settings.redis, max_connections=16)
        ctx["worker_id"] = f"{socket.gethostname()}:{secrets.token_hex(4)}"
        renderer = renderer_factory(settings.screenshots)
        ctx["renderer"] = renderer
        await renderer.start()
        ctx["reporter"] = asyncio.create_task(_report_forever(ctx), name="screenshot-renderer-report")

    return startup


async def shutdown(ctx: ScreenshotContext) -> None:
    if "reporter" in ctx:
        ctx["reporter"].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ctx["reporter"]
    if "redis" in ctx:
        with contextlib.suppress(Exception):
            await services.forget_renderer(ctx["redis"], ctx["worker_id"])
        await ctx["redis"].aclose()
    if "renderer" in ctx:
        await ctx["renderer"].close()


def build_settings(settings: Settings, renderer_factory: Any = Renderer) -> SettingsDict[ScreenshotContext]:
    concurrency = settings.screenshots.concurrency
    return {
        "queue": make_queue(settings.queue_redis, name=services.SCREENSHOTS_QUEUE, concurrency=concurrency),
        "functions": [render_screenshot],
        "concurrency": concurrency,
        "startup": make_startup(settings, renderer_factory),
        "shutdown": shutdown,
        "timers": {"schedule": 1, "worker_info": 10, "sweep": 60, "abort": 1},
    }


settings: Any = build_settings(_load_settings())
