"""A page that never finishes loading fails with a clear state once the render's time limit passes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.screenshots.conftest import RunningWorker, ScreenshotWorld
from tests.screenshots.site import LoopbackSite
from tests.screenshots.test_render import ask


@pytest.fixture(scope="module")
def worker_overrides() -> dict[str, Any]:
    return {"timeout_ms": 3000}


async def test_a_page_that_never_finishes_loading_times_out(
    web: httpx.AsyncClient, world: ScreenshotWorld, worker: RunningWorker, site: LoopbackSite
) -> None:
    await world.visit(f"{site.url}/never")
    asked = await ask(web, world)
    seen = set()
    while (response := await web.get(asked.json()["href"], headers=world.headers())).status_code == 202:
        seen.add(response.json()["state"])
        await asyncio.sleep(0.05)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["state"] == "failed"
    assert body["code"] == "render_timeout"
    assert "3 s" in body["message"]
    assert seen <= {"queued", "rendering"} and "rendering" in seen
