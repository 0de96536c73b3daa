"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, get
from litestar.response import Response

from server.database import engine
from server.migrations import pending_migrations
from server.web_state import redis_of

CHECK_TIMEOUT_SECONDS = 2.0


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    """The process is alive and serving HTTP."""
    return {"status": "ok"}


async def _check(probe: Callable[[], Awaitable[dict[str, Any] | None]]) -> dict[str, Any]:
    try:
        extra = await asyncio.wait_for(probe(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {CHECK_TIMEOUT_SECONDS:g}s"}
    except Exception as error:  # a probe reports any failure, it never raises
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    if extra and extra.get("ok") is False:
        return extra
    return {"ok": True, **(extra or {})}


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """PostgreSQL reachable, migrations current, Redis reachable. 503 naming the failed checks."""

    async def database() -> None:
        await engine().run_ddl("SELECT 1")

    async def migrations() -> dict[str, Any]:
        pending = await pending_migrations()
        return {"ok": not pending, "pending": pending} if pending else {}

    async def redis() -> None:
        await redis_of(request.app).ping()

    names = ("database", "migrations", "redis")
    results = await asyncio.gather(_check(database), _check(migrations), _check(redis))
    checks = dict(zip(names, results, strict=True))
    failed = [name for name, result in checks.items() if not result["ok"]]
    body = {"status": "fail" if failed else "ok", "failed": failed, "checks": checks}
    return Response(body, status_code=503 if failed else 200)
