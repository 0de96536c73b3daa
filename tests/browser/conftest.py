"""Browser tests: a live stack of Parley's real processes and headless Chromium driving it.

- ``live_stack``: real ``web``, ``realtime`` and ``worker`` processes on free ports, over the test
  run's PostgreSQL and Redis (migrated by the session fixture). One stack per test, so no process
  keeps a cache or a socket across the per-test truncation.
- ``browser`` / ``new_page``: Debian's Chromium (Playwright cannot download its own browsers here)
  through Playwright's async API, a fresh context per page.
- ``shoot``: a full-page screenshot under the git-ignored ``.artifacts/screenshots/``, for a
  reviewer to look at; every browser test should leave one of each page it visits.
- ``assert_accessible``: axe-core (pinned in ``tests/browser/node``, installed by ``make test``)
  run in the page; serious and critical violations fail the test with their rules and targets.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright

from tests.browser.support import screenshot
from tests.processes import PYTHON, free_port, http_status, start, stop

CHROMIUM = os.environ.get("PARLEY_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

# Short timers, so reconnects, presence and grace periods play out within a test.
LIVE_ENV = {
    "REALTIME_PING_INTERVAL_MS": "1000",
    "REALTIME_PING_TIMEOUT_MS": "3000",
    "REALTIME_PRESENCE_GRACE_MS": "1000",
    "REALTIME_HEARTBEAT_MS": "1000",
    "LOG_LEVEL": "INFO",
}

COMMANDS = {
    "web": [PYTHON, "-m", "server", "web"],
    "realtime": [PYTHON, "-m", "server", "realtime"],
    "worker": [PYTHON, "-m", "saq", "tasks.worker.settings"],
}


@dataclass
class LiveStack:
    """Parley's processes, each restartable on its own port."""

    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.env['WEB_PORT']}"

    @property
    def realtime_url(self) -> str:
        return f"http://127.0.0.1:{self.env['REALTIME_PORT']}"

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}-{self.starts.get(name, 1)}.log"

    def log(self, name: str) -> str:
        """The current (latest) run's output of process ``name``."""
        return self.log_path(name).read_text(errors="replace")

    def start(self, *names: str) -> None:
        """Start the named processes (all by default) and wait until each answers."""
        for name in names or tuple(COMMANDS):
            self.starts[name] = self.starts.get(name, 0) + 1
            self.processes[name] = start(COMMANDS[name], self.env, self.log_path(name))
        for name in names or tuple(COMMANDS):
            self._wait_ready(name)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Stop one process with ``sig`` (SIGKILL by default: a crash) and return its exit code."""
        return stop(self.processes.pop(name), sig, group=True)

    def restart(self, name: str, sig: int = signal.SIGTERM) -> None:
        self.kill(name, sig)
        self.start(name)

    def stop_all(self) -> dict[str, int]:
        return {name: stop(self.processes.pop(name)) for name in list(self.processes)}

    def _wait_ready(self, name: str, timeout: float = 40) -> None:
        process = self.processes[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.log(name)[-4000:]}")
            if self._ready(name):
                return
            time.sleep(0.05)
        raise AssertionError(f"{name} did not become ready within {timeout:g}s:\n{self.log(name)[-4000:]}")

    def _ready(self, name: str) -> bool:
        if name == "web":
            return http_status(f"{self.web_url}/readyz") == 200
        if name == "realtime":
            return "listening on" in self.log(name) and http_status(f"{self.realtime_url}/healthz") == 200
        return "worker ready on queue" in self.log(name)  # tasks/worker.py, at the end of start-up


@pytest.fixture
def live_stack_factory(subprocess_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., LiveStack]]:
    """``live_stack_factory(**extra_env)``: a started stack with settings of the test's own."""
    stacks: list[LiveStack] = []

    def make(**extra_env: str) -> LiveStack:
        web_port, realtime_port = free_port(), free_port()
        env = {
            **subprocess_env,
            **LIVE_ENV,
            "WEB_PORT": str(web_port),
            "REALTIME_PORT": str(realtime_port),
            "REALTIME_PUBLIC_URL": f"http://127.0.0.1:{realtime_port}",
            **extra_env,
        }
        logs = tmp_path / f"stack{len(stacks)}"
        logs.mkdir()
        stack = LiveStack(env=env, logs=logs)
        stacks.append(stack)
        stack.start()
        return stack

    yield make
    for stack in stacks:
        codes = stack.stop_all()
        for name in codes:
            output = stack.log(name)
            assert "Segmentation fault" not in output, f"{name} crashed:\n{output[-3000:]}"


@pytest.fixture
def live_stack(live_stack_factory: Callable[..., LiveStack]) -> LiveStack:
    return live_stack_factory()


@pytest.fixture
def shoot() -> Callable[[Page, str], Awaitable[Path]]:
    """``await shoot(page, "console-members")`` (also importable from ``tests.browser.support``)."""
    return screenshot


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once per run)
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make chromium` installs Debian's package")
    # --no-sandbox: the tests run as root here, where Chromium refuses its sandbox.
    instance = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield instance
    await instance.close()


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """``await new_page(color_scheme="dark", viewport=..., ...)``: a page in a fresh context.

    Console messages and uncaught page errors are collected on ``page.console_lines`` and
    ``page.js_errors`` (attributes added here) so a test can assert on them.
    """
    contexts = []

    async def make(color_scheme: str = "light", **context_options: Any) -> Page:
        context = await browser.new_context(color_scheme=color_scheme, **context_options)  # type: ignore[arg-type]
        contexts.append(context)
        page = await context.new_page()
        console_lines: list[str] = []
        js_errors: list[str] = []
        page.on("console", lambda message: console_lines.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: js_errors.append(str(error)))
        page.console_lines = console_lines  # type: ignore[attr-defined]
        page.js_errors = js_errors  # type: ignore[attr-defined]
        return page

    yield make
    for context in contexts:
        await context.close()
