"""Screenshot tests: a real Chromium in a real SAQ worker, real Redis, a loopback test site."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis
from saq import Worker

from server.redis_client import Keys
from server.screenshots import services
from server.screenshots.renderer import Renderer, chromium_problem
from server.settings import Settings
from tests import factories as f
from tests.conftest import serve_in_process
from tests.screenshots.site import LoopbackSite, start_site

if chromium_problem("/usr/bin/chromium") is not None:  # pragma: no cover - the Makefile installs it
    pytest.skip("Chromium is not installed (make chromium)", allow_module_level=True)


def with_screenshots(settings: Settings, **changes: Any) -> Settings:
    """The test run's settings with the screenshot settings changed (loopback allowed by default)."""
    changes.setdefault("allow_loopback", True)
    changes.setdefault("timeout_ms", 15_000)  # a loaded 2-core machine; the timeout test sets its own
    changes.setdefault("max_page_bytes", 1_000_000)
    return dataclasses.replace(settings, screenshots=dataclasses.replace(settings.screenshots, **changes))


@dataclass
class RunningWorker:
    worker: Worker[Any]
    task: asyncio.Task[None]

    @property
    def renderer(self) -> Renderer:
        renderer: Renderer = self.worker.context["renderer"]
        return renderer

    async def report(self, redis: Redis) -> None:
        """Say again that this worker renders (a test's clean-up flushed Redis)."""
        await services.report_renderer(redis, self.worker.context["worker_id"], self.renderer.problem)


@contextlib.asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[RunningWorker]:
    """The screenshot worker's SAQ settings, run in this event loop (so tests can count renders)."""
    from tasks.screenshots import build_settings

    worker = Worker(**build_settings(settings))
    task = asyncio.create_task(worker.start())
    deadline = time.monotonic() + 30
    while "worker_id" not in worker.context or "reporter" not in worker.context:
        assert not task.done(), task
        assert time.monotonic() < deadline, "the screenshot worker did not start"
        await asyncio.sleep(0.02)
    try:
        yield RunningWorker(worker, task)
    finally:
        worker.event.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture(scope="session")
async def site() -> AsyncIterator[LoopbackSite]:
    test_site, runner = await start_site()
    yield test_site
    await runner.cleanup()


@pytest.fixture(scope="module")
def worker_overrides() -> dict[str, Any]:
    """Screenshot settings of this module's worker; a module overrides this fixture to change them."""
    return {}


@pytest.fixture(scope="module")
async def module_worker(settings: Settings, worker_overrides: dict[str, Any]) -> AsyncIterator[RunningWorker]:
    """One worker (one Chromium) per module: modules run one after the other, so only one
    worker consumes the screenshots queue at a time."""
    async with running_worker(with_screenshots(settings, **worker_overrides)) as running:
        yield running


@pytest.fixture
async def worker(module_worker: RunningWorker, redis: Redis) -> RunningWorker:
    await module_worker.report(redis)
    return module_worker


@pytest.fixture
def web_factory(
    settings: Settings,
) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """An in-process web app with screenshot settings of the test's choosing."""
    from server.web import create_app

    def make(**changes: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return serve_in_process(create_app(with_screenshots(settings, **changes)))

    return make


@pytest.fixture
async def web(
    web_factory: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    async with web_factory() as client:
        yield client


@dataclass
class ScreenshotWorld:
    project_id: int
    other_project_id: int
    visitor_id: int
    visitor_uid: str
    other_visitor_id: int
    agent_id: int
    agent2_id: int
    keys: dict[str, str]
    redis: Redis

    def headers(self, who: str = "agent") -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[who]}"}

    async def visit(self, url: str, visitor_uid: str | None = None, project_id: int | None = None) -> None:
        """The visitor is on ``url`` (what the gateway records on ``navigate``)."""
        location = {"url": url, "title": "A page", "at": time.time()}
        key = Keys.visitor_location(project_id or self.project_id, visitor_uid or self.visitor_uid)
        await self.redis.set(key, msgspec.json.encode(location), ex=3600)

    def ask_path(self, visitor_id: int | None = None, project_id: int | None = None) -> str:
        return f"/api/v1/projects/{project_id or self.project_id}/visitors/{visitor_id or self.visitor_id}/screenshot"


async def _key(user: Any) -> str:
    from server.tenancy.apikeys import create_api_key
    from server.tenancy.queries import actor_for

    created = await create_api_key(
        await actor_for(user), name="t", project_id=None, read_only=False, expires_at=None
    )
    return created.secret


@pytest.fixture
async def world(site: LoopbackSite, redis: Redis) -> ScreenshotWorld:
    from server.tenancy.tables import ProjectMember

    role = ProjectMember.ProjectRole
    project = await f.make_project(
        allowed_origins=[site.url, "http://169.254.169.254", "http://localhost:8000"]
    )
    other = await f.make_project(allowed_origins=[site.url])
    agent, agent2, outsider = (await f.make_user(), await f.make_user(), await f.make_user())
    await f.make_member(project, agent, role.AGENT)
    await f.make_member(project, agent2, role.AGENT)
    await f.make_member(other, outsider, role.MANAGER)
    visitor = await f.make_visitor(project)
    other_visitor = await f.make_visitor(other)
    return ScreenshotWorld(
        project_id=project.id,
        other_project_id=other.id,
        visitor_id=visitor.id,
        visitor_uid=visitor.uid,
        other_visitor_id=other_visitor.id,
        agent_id=agent.id,
        agent2_id=agent2.id,
        keys={"agent": await _key(agent), "agent2": await _key(agent2), "outsider": await _key(outsider)},
        redis=redis,
    )


async def wait_done(
    web: httpx.AsyncClient, href: str, headers: dict[str, str], within: float = 30
) -> httpx.Response:
    """GET the handle until it is no longer queued or rendering (the render's own limit bounds it)."""
    deadline = time.monotonic() + within
    while True:
        response = await web.get(href, headers=headers)
        if response.status_code != 202:
            return response
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.05)
