"""Screenshots, the write side: a request becomes a handle; one render serves every waiter.

A request (:func:`request_screenshot`) checks the visitor's page (allowed origin, public
address), then runs one Lua script that records the handle and either finds the image in the
cache (``hit``), joins the render in flight (``wait``: the handle is added to its waiters) or
takes the render's lock with ``SET NX`` and a short expiry (``render``: only then is a job
queued). The worker's job (:func:`start_render`, then :func:`finish_render` or
:func:`fail_render`) stores the image with the cache's TTL and the render's outcome and, in the
same script, takes the waiters and drops the lock, so a request is either among the waiters or
sees the image: none is left waiting. Each waiter's agent then gets ``screenshot.ready`` (or
``screenshot.failed``) on its own sockets (:func:`announce`).

The state a ``GET`` reports is read, not stored on the handle: the image present is ``ready``;
else the outcome of the render the handle joined (``failed`` with its reason, or expired);
else the lock's value (``queued`` / ``rendering``); a handle whose render vanished without an
outcome (its worker died and the lock expired) is ``failed`` with ``render_lost``.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec
from redis.asyncio import Redis
from saq.queue.base import Queue

from server.chat.tables import Visitor
from server.errors import Conflict, ErrorCode, Invalid, NotFound, Unavailable
from server.outbox.envelope import Envelope, encode, project_channel
from server.outbox.events import EventType
from server.ratelimit import enforce
from server.redis_client import Keys, publish_all
from server.screenshots import ratelimit_rules
from server.screenshots.guard import AddressPolicy, Resolver, checked_addresses, system_resolver
from server.screenshots.schemas import (
    HandleInfo,
    Mode,
    RenderJob,
    ScreenshotError,
    ScreenshotView,
    SnapshotRequest,
    SnapshotUpload,
    State,
    Viewport,
)
from server.screenshots.urls import cache_digest, check_allowed, normalise_url
from server.settings import ScreenshotSettings

log = logging.getLogger(__name__)

SCREENSHOTS_QUEUE = "screenshots-queue"
"""The render jobs' own SAQ queue: slow renders never delay ``live-chat-events-queue``."""
RENDER_JOB = "render_screenshot"
IMAGE_CONTENT_TYPE = "image/jpeg"
QUEUED_LOCK_SECONDS = 60
"""How long a queued render's lock lives before a worker starts it (a lost job frees it then)."""
RENDERING_LOCK_MARGIN_SECONDS = 15
"""A render's lock outlives its time limit by this much; a worker that died frees it then."""
HANDLE_EXTRA_SECONDS = 300
"""A handle outlives the cache's TTL by this much, so an expired image reads as expired, not unknown."""
RENDERER_REPORT_SECONDS = 30
"""A screenshot worker's report of itself counts for this long (it reports every 10 s)."""
SNAPSHOT_WAIT_SECONDS = 20
"""How long a DOM-snapshot render waits for the visitor's widget to send its copy of the page."""
SNAPSHOT_KEEP_SECONDS = 60
"""How long a received snapshot waits in Redis for the worker that draws it."""

# A lock's value is "<state>:<render id>"; ``string.match(lock, ':(.*)$')`` is the render id.
_CLAIM = """
redis.call('HSET', KEYS[4], 'info', ARGV[1])
redis.call('EXPIRE', KEYS[4], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[4], 'render', 'hit')
  return {'hit', ''}
end
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[2])
local lock = redis.call('GET', KEYS[2])
if lock then
  local render = string.match(lock, ':(.*)$')
  redis.call('HSET', KEYS[4], 'render', render)
  return {'wait', render}
end
redis.call('SET', KEYS[2], 'queued:' .. ARGV[5], 'NX', 'EX', ARGV[4])
redis.call('HSET', KEYS[4], 'render', ARGV[5])
return {'render', ARGV[5]}
"""

_START = """
local lock = redis.call('GET', KEYS[1])
if lock and string.match(lock, ':(.*)$') ~= ARGV[1] then
  return 'other'
end
redis.call('SET', KEYS[1], 'rendering:' .. ARGV[1], 'EX', ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 'cached'
end
return 'go'
"""

_FINISH = """
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[1], ARGV[5], 'EX', ARGV[4])
end
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[3])
local waiters = redis.call('SMEMBERS', KEYS[3])
redis.call('DEL', KEYS[3])
local lock = redis.call('GET', KEYS[2])
if lock and string.match(lock, ':(.*)$') == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return waiters
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class Image:
    data: bytes
    content_type: str
    max_age: int
    """Seconds the image stays cached here: what ``Cache-Control: private, max-age`` says."""


def _href(project_id: int, handle: str) -> str:
    return f"/api/v1/projects/{project_id}/screenshots/{handle}"


def view_of(info: HandleInfo, state: State, error: ScreenshotError | None = None) -> ScreenshotView:
    return ScreenshotView(
        id=info.id,
        state=state,
        visitor_id=info.visitor_id,
        url=info.url,
        viewport=info.viewport,
        href=_href(info.project_id, info.id),
        requested_at=info.requested_at,
        mode=info.mode,
        code=error.code if error is not None else None,
        message=error.message if error is not None else None,
    )


async def check_renderer_available(redis: Redis) -> None:
    """:class:`Unavailable` (``screenshots_unavailable``) unless a screenshot worker reported
    recently that its Chromium runs; the message says why not."""
    reports = await redis.hgetall(Keys.SCREENSHOT_RENDERERS)
    now = time.time()
    problems: list[str] = []
    for raw in reports.values():
        report = msgspec.json.decode(raw)
        if report.get("until", 0) < now:
            continue
        if report.get("ok"):
            return
        problems.append(str(report.get("reason") or "unknown"))
    reason = (
        problems[0] if problems else "no screenshot worker is running (start: saq tasks.screenshots.settings)"
    )
    raise Unavailable(f"Screenshots are unavailable: {reason}", code=ErrorCode.SCREENSHOTS_UNAVAILABLE)


async def report_renderer(redis: Redis, worker_id: str, problem: str | None) -> None:
    """A screenshot worker says whether it can render (every 10 s, and at start and stop)."""
    now = time.time()
    report = {"ok": problem is None, "reason": problem, "until": now + RENDERER_REPORT_SECONDS}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(Keys.SCREENSHOT_RENDERERS, worker_id, msgspec.json.encode(report))
        pipe.hgetall(Keys.SCREENSHOT_RENDERERS)
        _, reports = await pipe.execute()
    stale = [name for name, raw in reports.items() if msgspec.json.decode(raw).get("until", 0) < now - 3600]
    if stale:
        await redis.hdel(Keys.SCREENSHOT_RENDERERS, *stale)


async def forget_renderer(redis: Redis, worker_id: str) -> None:
    await redis.hdel(Keys.SCREENSHOT_RENDERERS, worker_id)


async def request_screenshot(
    redis: Redis,
    queue: Queue,
    settings: ScreenshotSettings,
    *,
    project_id: int,
    visitor_id: int,
    requested_by: int,
    viewport: Viewport,
    mode: Mode | None = None,
    resolver: Resolver = system_resolver,
) -> ScreenshotView:
    """An agent asks for a screenshot of a visitor's current page; returns the new handle.

    ``mode`` ``url`` renders the page's address; ``snapshot`` asks the visitor's widget for a
    sanitised copy of its page (``screenshot.requested`` to the visitor's sockets), drawn once it
    arrives (:func:`receive_snapshot`); None picks ``snapshot`` where the project turned DOM
    snapshots on, else ``url``.

    Errors: unknown visitor 404; no current page 409 ``no_current_page``; a page outside the
    project's allowed origins 422 ``origin_not_allowed``, not ``http(s)`` 422 ``url_not_allowed``,
    on a refused address 422 ``address_not_allowed``; a snapshot where the project did not turn
    them on 409 ``snapshots_disabled``, of a visitor with no widget connected 409
    ``visitor_offline``; no working renderer 503 ``screenshots_unavailable``; too many requests 429.
    """
    message = "Too many screenshot requests; try again later."
    await enforce(redis, ratelimit_rules.PER_AGENT, f"{project_id}:{requested_by}", message)
    await enforce(redis, ratelimit_rules.PER_PROJECT, str(project_id), message)
    row: dict[str, Any] | None = (
        await Visitor.select(
            Visitor.uid,
            Visitor.project.allowed_origins.as_alias("allowed_origins"),
            Visitor.project.dom_snapshots.as_alias("dom_snapshots"),
        )
        .where((Visitor.project == project_id) & (Visitor.id == visitor_id))
        .first()
    )
    if row is None:
        raise NotFound("No such visitor.")
    visitor_uid: str = row["uid"]
    if mode is None:
        mode = "snapshot" if row["dom_snapshots"] else "url"
    if mode == "snapshot" and not row["dom_snapshots"]:
        raise Conflict(
            "DOM snapshots are off in this project: a manager turns them on in the project's settings "
            "(dom_snapshots), or ask for mode url.",
            code=ErrorCode.SNAPSHOTS_DISABLED,
        )
    raw_location = await redis.get(Keys.visitor_location(project_id, visitor_uid))
    location_url = msgspec.json.decode(raw_location).get("url") if raw_location else None
    if not isinstance(location_url, str) or not location_url:
        raise Conflict(
            "The visitor has no current page: it is not online or its widget reported none.",
            code=ErrorCode.NO_CURRENT_PAGE,
        )
    url = normalise_url(location_url)
    check_allowed(url, list(row["allowed_origins"] or []))
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    await checked_addresses(parts.hostname or "", port, AddressPolicy(settings.allow_loopback), resolver)
    if mode == "snapshot" and not await _visitor_connected(redis, project_id, visitor_uid):
        raise Conflict(
            "The visitor's widget is not connected: nothing can send the page.",
            code=ErrorCode.VISITOR_OFFLINE,
        )
    await check_renderer_available(redis)

    # A snapshot shows one visitor's page: its image is never another visitor's cache hit.
    digest = (
        cache_digest(url, viewport)
        if mode == "url"
        else cache_digest(url, f"{viewport}\nsnapshot\n{visitor_uid}")
    )
    info = HandleInfo(
        id="s_" + secrets.token_urlsafe(12),
        project_id=project_id,
        visitor_id=visitor_id,
        visitor_uid=visitor_uid,
        url=url,
        viewport=viewport,
        digest=digest,
        requested_by=requested_by,
        requested_at=time.time(),
        mode=mode,
    )
    claimed = await redis.eval(
        _CLAIM,
        4,
        Keys.screenshot_image(project_id, digest),
        Keys.screenshot_render(project_id, digest),
        Keys.screenshot_waiters(project_id, digest),
        Keys.screenshot_handle(project_id, info.id),
        msgspec.json.encode(info),
        settings.cache_seconds + HANDLE_EXTRA_SECONDS,
        info.id,
        QUEUED_LOCK_SECONDS if mode == "url" else SNAPSHOT_WAIT_SECONDS,
        secrets.token_urlsafe(9),
    )
    outcome, render_id = _text(claimed[0]), _text(claimed[1])
    if outcome == "hit":
        await announce(redis, [info], "ready")
        return view_of(info, "ready")
    if outcome == "render":
        job = RenderJob(
            project_id=project_id,
            digest=digest,
            url=url,
            viewport=viewport,
            render_id=render_id,
            keep_seconds=settings.cache_seconds + HANDLE_EXTRA_SECONDS,
            snapshot=mode == "snapshot",
        )
        if mode == "snapshot":
            await _ask_for_snapshot(redis, settings, visitor_uid, job)
        else:
            await _enqueue_render(queue, settings, job)
    return view_of(info, "queued")


async def _enqueue_render(queue: Queue, settings: ScreenshotSettings, job: RenderJob) -> None:
    await queue.enqueue(
        RENDER_JOB,
        key=f"screenshot:{job.project_id}:{job.render_id}",
        timeout=int(settings.timeout_ms / 1000) + RENDERING_LOCK_MARGIN_SECONDS,
        retries=1,
        job=msgspec.to_builtins(job),
    )


async def _visitor_connected(redis: Redis, project_id: int, visitor_uid: str) -> bool:
    """A socket of the visitor's widget is live (its heartbeat expiry, in ms, lies ahead)."""
    live: int = await redis.zcount(
        Keys.presence_sockets(project_id, "visitor", visitor_uid), int(time.time() * 1000), "+inf"
    )
    return live > 0


async def _ask_for_snapshot(
    redis: Redis, settings: ScreenshotSettings, visitor_uid: str, job: RenderJob
) -> None:
    """Keep the render for the widget's answer and ask the visitor's sockets (every tab) for it."""
    snapshot_id = "snap_" + secrets.token_urlsafe(16)
    request = SnapshotRequest(visitor_uid=visitor_uid, job=job)
    await redis.set(
        Keys.screenshot_snapshot_request(job.project_id, snapshot_id),
        msgspec.json.encode(request),
        ex=SNAPSHOT_WAIT_SECONDS,
    )
    data = {"visitor_uid": visitor_uid, "snapshot_id": snapshot_id, "max_bytes": settings.snapshot_max_bytes}
    envelope = Envelope(
        type=EventType.SCREENSHOT_REQUESTED, project_id=job.project_id, at=time.time(), data=data
    )
    await redis.publish(project_channel(job.project_id), encode(envelope))


async def receive_snapshot(
    redis: Redis,
    queue: Queue,
    settings: ScreenshotSettings,
    *,
    project_id: int,
    visitor_uid: str,
    snapshot_id: str,
    upload: SnapshotUpload,
) -> bool:
    """The widget's copy of its page: queue its render (``True``), or end the render with the
    widget's reason. One use: the first tab to answer wins, later answers are 404.

    Errors: an unknown, expired, answered or another visitor's request 404
    ``snapshot_not_requested``; a copy larger than ``snapshot_max_bytes`` 422
    ``snapshot_too_large`` (the render fails with that reason too); neither ``html`` nor
    ``error`` 422.
    """
    if upload.html is None and upload.error is None:
        raise Invalid("Send html, or error when there is no snapshot.", fields={"html": "required"})
    key = Keys.screenshot_snapshot_request(project_id, snapshot_id)
    raw = await redis.get(key) if snapshot_id.startswith("snap_") and len(snapshot_id) <= 40 else None
    request = msgspec.json.decode(raw, type=SnapshotRequest) if raw is not None else None
    if request is None or request.visitor_uid != visitor_uid or not await redis.delete(key):
        raise NotFound(
            "No such snapshot request (it expired or was answered).", code=ErrorCode.SNAPSHOT_NOT_REQUESTED
        )
    job = request.job
    if upload.html is not None and len(upload.html.encode()) > settings.snapshot_max_bytes:
        upload = SnapshotUpload(error="snapshot_too_large")
    if upload.error is not None:
        reasons = {
            "snapshot_too_large": f"The visitor's page is larger than {settings.snapshot_max_bytes} bytes.",
            "snapshot_failed": "The visitor's widget could not copy the page.",
        }
        await fail_render(redis, job, ErrorCode(upload.error), reasons[upload.error])
        if upload.error == "snapshot_too_large":
            raise Invalid(reasons[upload.error], code=ErrorCode.SNAPSHOT_TOO_LARGE)
        return False
    assert upload.html is not None
    await redis.set(
        Keys.screenshot_snapshot(project_id, job.render_id), upload.html, ex=SNAPSHOT_KEEP_SECONDS
    )
    await redis.set(
        Keys.screenshot_render(project_id, job.digest), f"queued:{job.render_id}", ex=QUEUED_LOCK_SECONDS
    )
    await _enqueue_render(queue, settings, job)
    return True


async def take_snapshot(redis: Redis, job: RenderJob) -> str | None:
    """The worker takes the page it draws (None: it expired before the worker came)."""
    key = Keys.screenshot_snapshot(job.project_id, job.render_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(key)
        pipe.delete(key)
        raw, _ = await pipe.execute()
    return raw.decode() if isinstance(raw, bytes) else raw


async def read_screenshot(
    redis: Redis, project_id: int, handle: str, cache_seconds: int
) -> Image | ScreenshotView:
    """``GET`` on a handle: the image when it is ready, else the handle's state (404 if unknown).

    The image, the render's outcome and its lock are read in one ``MULTI``, and a render's end
    writes them in one script, so a reader never sees a render that has neither ended nor run.
    """
    if not handle.startswith("s_") or len(handle) > 40:
        raise NotFound("No such screenshot.")
    stored: dict[Any, Any] = await redis.hgetall(Keys.screenshot_handle(project_id, handle))
    if b"info" not in stored:
        raise NotFound("No such screenshot.")
    info = msgspec.json.decode(stored[b"info"], type=HandleInfo)
    render_id = _text(stored.get(b"render", b"hit"))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(Keys.screenshot_image(project_id, info.digest))
        pipe.ttl(Keys.screenshot_image(project_id, info.digest))
        pipe.get(Keys.screenshot_outcome(project_id, render_id))
        pipe.get(Keys.screenshot_render(project_id, info.digest))
        image, ttl, outcome, lock = await pipe.execute()
    if image is not None:
        return Image(data=image, content_type=IMAGE_CONTENT_TYPE, max_age=max(int(ttl), 0))
    ended = msgspec.json.decode(outcome) if outcome is not None else None
    if ended is not None and ended.get("state") == "failed":
        error = ScreenshotError(
            code=ended.get("code", ErrorCode.RENDER_ERROR), message=ended.get("message", "")
        )
        return view_of(info, "failed", error)
    if ended is not None or render_id == "hit":
        raise NotFound(
            f"The screenshot has expired (images are kept {cache_seconds} s): ask for a new one.",
            code=ErrorCode.SCREENSHOT_EXPIRED,
        )
    state = _text(lock).partition(":")[0] if lock is not None else None
    if state == "queued":
        return view_of(info, "queued")
    if state == "rendering":
        return view_of(info, "rendering")
    if info.mode == "snapshot":
        error = ScreenshotError(
            code=ErrorCode.SNAPSHOT_NOT_RECEIVED,
            message="The visitor's widget sent no copy of the page in time (closed or offline); ask again.",
        )
    else:
        error = ScreenshotError(
            code=ErrorCode.RENDER_LOST, message="The render was lost (its worker stopped); ask again."
        )
    return view_of(info, "failed", error)


async def describe_ready(redis: Redis, project_id: int, handle: str) -> ScreenshotView:
    """The view of a handle whose image is ready (for pages that show the image by its URL)."""
    raw = await redis.hget(Keys.screenshot_handle(project_id, handle), "info")
    if raw is None:
        raise NotFound("No such screenshot.")
    return view_of(msgspec.json.decode(raw, type=HandleInfo), "ready")


async def start_render(redis: Redis, job: RenderJob, timeout_ms: int) -> str:
    """The worker begins: the lock says ``rendering`` for the render's time limit and margin.

    Returns ``go``; ``cached`` when the image is cached already (a duplicate job: only hand the
    waiters the image); ``other`` when another render of the page holds the lock (it serves them).
    """
    seconds = int(timeout_ms / 1000) + RENDERING_LOCK_MARGIN_SECONDS
    started = await redis.eval(
        _START,
        2,
        Keys.screenshot_render(job.project_id, job.digest),
        Keys.screenshot_image(job.project_id, job.digest),
        job.render_id,
        seconds,
    )
    return _text(started)


async def _end_render(
    redis: Redis, job: RenderJob, outcome: dict[str, str], image: bytes | None, ttl: int
) -> list[HandleInfo]:
    members = await redis.eval(
        _FINISH,
        4,
        Keys.screenshot_image(job.project_id, job.digest),
        Keys.screenshot_render(job.project_id, job.digest),
        Keys.screenshot_waiters(job.project_id, job.digest),
        Keys.screenshot_outcome(job.project_id, job.render_id),
        job.render_id,
        msgspec.json.encode(outcome),
        job.keep_seconds,
        ttl,
        image or b"",
    )
    handles = sorted(_text(member) for member in members)
    if not handles:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for handle in handles:
            pipe.hget(Keys.screenshot_handle(job.project_id, handle), "info")
        infos = await pipe.execute()
    return [msgspec.json.decode(raw, type=HandleInfo) for raw in infos if raw is not None]


async def finish_render(redis: Redis, job: RenderJob, image: bytes | None, ttl: int) -> list[HandleInfo]:
    """Cache the image (``None``: it is cached already), hand it to every waiter, tell their agents."""
    waiters = await _end_render(redis, job, {"state": "ready"}, image, ttl)
    await announce(redis, waiters, "ready")
    return waiters


async def fail_render(redis: Redis, job: RenderJob, code: ErrorCode, message: str) -> list[HandleInfo]:
    """Record the failure for every waiter (nothing is cached) and tell their agents."""
    outcome = {"state": "failed", "code": code, "message": message}
    waiters = await _end_render(redis, job, outcome, None, 0)
    await announce(redis, waiters, "failed", ScreenshotError(code=code, message=message))
    return waiters


async def announce(
    redis: Redis, handles: list[HandleInfo], state: State, error: ScreenshotError | None = None
) -> None:
    """``screenshot.ready`` / ``screenshot.failed`` to each asking agent's own sockets (all its tabs).

    Ephemeral, over the project's pub/sub channel like typing and navigation: the handle itself
    is the durable record, so an agent that was offline reads it with ``GET``.
    """
    if not handles:
        return
    kind = EventType.SCREENSHOT_READY if state == "ready" else EventType.SCREENSHOT_FAILED
    now = time.time()
    messages = []
    for info in handles:
        data = msgspec.to_builtins(view_of(info, state, error))
        data.update(agent_user_id=info.requested_by, visitor_uid=info.visitor_uid)
        envelope = Envelope(type=kind, project_id=info.project_id, at=now, data=data)
        messages.append((project_channel(info.project_id), encode(envelope)))
    await publish_all(redis, messages)  # SPUBLISH on a cluster
