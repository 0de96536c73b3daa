"""Administration > System: what an operator looks at first.

PostgreSQL and Redis (each with its round-trip time), the worker's last heartbeat and SAQ's own
worker list, the queue (waiting, running, scheduled, and the oldest waiting job's age), the
outbox lag (the oldest event not yet published), messages in the dead-letter list, and each
realtime node with its live sockets (from the presence registry: a node with no socket is not
listed). Sparklines of the last hour (stored messages per second, queue depth) are drawn on the
server as SVG from the worker's samples (``server/samples.py``): no chart script. Dead letters
are listed with a replay (one or all, confirmed) that sends them through the pipeline again
(``server/chat/dead_letters.py``), beside the queue's failed jobs. Links to piccolo-admin and the
SAQ UI for the rest.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from saq.job import Status

from console.admin import ADMIN_PATH, QUEUES_PATH
from console.flash import done
from console.forms import form_data
from console.render import Page, render
from console.shell import CurrentViewer, Need, needs
from server.chat import dead_letters
from server.database import fetch
from server.redis_client import Keys, presence_buckets
from server.samples import Sample, recent_samples, throughput
from server.web_state import queue_of, redis_of

PATH = "/console/admin/system"
SPARK_WIDTH, SPARK_HEIGHT = 240, 48
FAILED_JOBS_LISTED = 20
FAILED_JOBS_SECONDS = 0.5


async def _timed(probe: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        value = await asyncio.wait_for(probe, 2.0)
    except Exception as error:  # the page reports a failure, it never fails itself
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:200]}
    return {"ok": True, "ms": (time.perf_counter() - started) * 1000, "value": value}


async def system_status(request: Request[Any, Any, Any]) -> dict[str, Any]:
    redis = redis_of(request.app)
    queue = queue_of(request.app)
    now = time.time()
    postgres = await _timed(fetch("SELECT version() AS version"))
    redis_ping = await _timed(redis.ping())
    outbox = await _timed(
        fetch(
            "SELECT count(*) AS waiting, min(created_at) AS oldest"
            " FROM outbox_event WHERE published_at IS NULL"
        )
    )
    info = await _timed(queue.info(jobs=True, limit=100))
    heartbeat = await redis.get(Keys.worker_heartbeat())
    dead = await redis.llen(Keys.DEAD_LETTERS)
    sockets: list[Any] = []
    for bucket in range(presence_buckets(redis)):
        sockets += await redis.zrangebyscore(Keys.all_sockets(bucket), now * 1000, "+inf")
    nodes: Counter[str] = Counter()
    for raw in sockets:
        entry = raw.decode() if isinstance(raw, bytes) else str(raw)
        nodes[entry.rsplit("|", 1)[-1].rsplit(":", 1)[0]] += 1
    queue_info = info.get("value") or {}
    waiting = [
        job for job in queue_info.get("jobs", []) if job.get("status") == "queued" and job.get("queued")
    ]
    oldest_ms = min((job["queued"] for job in waiting), default=None)
    outbox_row = (outbox.get("value") or [{}])[0] if outbox["ok"] else {}
    oldest_event = outbox_row.get("oldest") if outbox_row else None
    return {
        "postgres": postgres,
        "postgres_version": (postgres.get("value") or [{}])[0].get("version", "").split(" on ")[0]
        if postgres["ok"]
        else "",
        "redis": redis_ping,
        "worker_heartbeat_age": now - float(heartbeat) if heartbeat else None,
        "workers": queue_info.get("workers", {}),
        "queue": {key: queue_info.get(key) for key in ("name", "queued", "active", "scheduled")},
        "oldest_job_age": now - oldest_ms / 1000 if oldest_ms else None,
        "outbox_waiting": outbox_row.get("waiting", 0) if outbox_row else None,
        "outbox_lag": (datetime.now(UTC) - oldest_event).total_seconds() if oldest_event else 0.0,
        "dead_letters": dead,
        "nodes": sorted(nodes.items()),
        "web_pid": os.getpid(),
    }


@dataclass(frozen=True, slots=True)
class Sparkline:
    """A polyline over the last hour, in an SVG ``viewBox`` of ``SPARK_WIDTH`` x ``SPARK_HEIGHT``."""

    points: str
    """``x,y x,y ...`` (empty: fewer than two samples)."""
    last: float
    peak: float
    minutes: int
    """How far back the line goes."""


def sparkline(series: list[tuple[float, float]], *, now: float, span: float = 3600.0) -> Sparkline:
    """``(time, value)`` pairs to a line: time across (since the first sample, at most the last
    ``span`` seconds), value up from 0 to the peak. Pure, so a test can check the drawing."""
    if len(series) < 2:
        return Sparkline("", series[-1][1] if series else 0.0, max((v for _, v in series), default=0.0), 0)
    peak = max(value for _, value in series)
    scale = (SPARK_HEIGHT - 4) / peak if peak > 0 else 0.0
    # Across the time the samples cover (at most ``span``): a young history still fills the width.
    window = min(span, max(now - series[0][0], 1.0))
    x = [max(0.0, SPARK_WIDTH - (now - at) / window * SPARK_WIDTH) for at, _ in series]
    y = [SPARK_HEIGHT - 2 - value * scale for _, value in series]
    points = " ".join(f"{left:.1f},{top:.1f}" for left, top in zip(x, y, strict=True))
    return Sparkline(points, series[-1][1], peak, max(1, round((now - series[0][0]) / 60)))


def charts(samples: list[Sample], now: float) -> dict[str, Sparkline]:
    return {
        "throughput": sparkline([(rate.at, rate.per_second) for rate in throughput(samples)], now=now),
        "queue": sparkline([(sample.at, float(sample.queued)) for sample in samples], now=now),
    }


async def failed_jobs(request: Request[Any, Any, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The queue's failed jobs that SAQ still keeps (newest first, at most ``FAILED_JOBS_LISTED``),
    and whether the search finished: SAQ finds them by SCANning every key, so on a big Redis the
    page stops looking after ``FAILED_JOBS_SECONDS`` and says so."""
    found: list[dict[str, Any]] = []
    complete = True
    try:
        async with asyncio.timeout(FAILED_JOBS_SECONDS):
            async for job in queue_of(request.app).iter_jobs(statuses=[Status.FAILED], batch_size=1000):
                found.append(
                    {
                        "function": job.function,
                        "error": (job.error or "").strip().splitlines()[-1:] or [""],
                        "at": datetime.fromtimestamp(job.completed / 1000, UTC) if job.completed else None,
                        "attempts": job.attempts,
                    }
                )
                if len(found) >= FAILED_JOBS_LISTED:
                    break
    except TimeoutError:
        complete = False
    return sorted(
        found, key=lambda job: job["at"] or datetime.min.replace(tzinfo=UTC), reverse=True
    ), complete


@get("/admin/system", name="console:admin-system", opt=needs(Need.ADMIN))
async def system_page(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Page:
    redis = redis_of(request.app)
    now = time.time()
    jobs = await _timed(failed_jobs(request))
    listed, complete = jobs.get("value") or ([], True)
    context = {
        "section": "admin-system",
        "status": await system_status(request),
        "charts": charts(await recent_samples(redis, now=now), now),
        "spark": {"width": SPARK_WIDTH, "height": SPARK_HEIGHT},
        "dead_letters": [
            (letter, datetime.fromtimestamp(letter.message.accepted_at, UTC))
            for letter in await dead_letters.list_dead_letters(redis)
        ],
        "failed_jobs": listed,
        "failed_jobs_complete": complete,
        "failed_jobs_error": jobs.get("error"),
        "admin_path": ADMIN_PATH,
        "queues_path": QUEUES_PATH,
    }
    return render(request, "console/admin_system.html", context)


@post("/admin/system/dead-letters/replay", opt=needs(Need.ADMIN))
async def replay_dead_letters(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Any:
    """Replay one dead letter (``id``) or all of them (``all``): the page asks to confirm first."""
    data = await form_data(request)
    ids = None if data.get("all") else {data.get("id", "")}
    replayed = await dead_letters.replay(redis_of(request.app), queue_of(request.app), ids)
    if not replayed:
        return done(request, PATH, "Nothing to replay: that message is no longer a dead letter.", kind="info")
    return done(
        request,
        PATH,
        f"{replayed} message{'' if replayed == 1 else 's'} sent through the pipeline again; "
        "a message that still cannot be stored comes back here.",
    )


route_handlers = [system_page, replay_dead_letters]
