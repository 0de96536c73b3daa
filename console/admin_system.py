"""Administration > System: what an operator looks at first.

PostgreSQL and Redis (each with its round-trip time), the worker's last heartbeat and SAQ's own
worker list, the queue (waiting, running, scheduled, and the oldest waiting job's age), the
outbox lag (the oldest event not yet published), messages in the dead-letter list, and each
realtime node with its live sockets (from the presence registry: a node with no socket is not
listed). Read-only; links to piccolo-admin and the SAQ UI for the rest.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get

from console.admin import ADMIN_PATH, QUEUES_PATH
from console.render import Page, render
from console.shell import CurrentViewer, Need, needs
from server.database import fetch
from server.redis_client import Keys, presence_buckets
from server.web_state import queue_of, redis_of


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


@get("/admin/system", name="console:admin-system", opt=needs(Need.ADMIN))
async def system_page(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Page:
    context = {
        "section": "admin-system",
        "status": await system_status(request),
        "admin_path": ADMIN_PATH,
        "queues_path": QUEUES_PATH,
    }
    return render(request, "console/admin_system.html", context)


route_handlers = [system_page]
