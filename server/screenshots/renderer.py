"""The renderer: one headless Chromium per screenshot worker process, a fresh context per render.

Playwright for Python drives Debian's ``/usr/bin/chromium`` (``executable_path``: Playwright
downloads no browser here). Each render gets its own incognito-like context (no cookies, storage
or cache shared with any other render), its own filtering proxy (:mod:`server.screenshots.proxy`)
through which every request goes, service workers, downloads and pop-ups blocked, a time limit,
a byte limit on what the page downloads and on the encoded image (JPEG, quality lowered until
it fits). The browser itself is started once and restarted if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from server.errors import ErrorCode
from server.screenshots.guard import AddressPolicy, Resolver, system_resolver
from server.screenshots.proxy import REFUSED_HEADER, Refusal, RenderProxy
from server.settings import ScreenshotSettings

log = logging.getLogger(__name__)

ViewportName = Literal["desktop", "mobile"]
CONTENT_TYPE = "image/jpeg"
JPEG_QUALITIES = (72, 55, 40, 28)
MOBILE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0 Mobile Safari/537.36 ParleyScreenshot"
)
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-breakpad",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--dns-prefetch-disable",
    # WebRTC could send UDP around the proxy: only proxied connections.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
]


@dataclass(frozen=True, slots=True)
class Viewport:
    width: int
    height: int
    mobile: bool


VIEWPORTS: dict[str, Viewport] = {
    "desktop": Viewport(1280, 800, mobile=False),
    "mobile": Viewport(390, 844, mobile=True),
}


@dataclass(slots=True)
class Prepared:
    """An opened context and page, with the proxy that is its only way out."""

    viewport_name: str
    proxy: RenderProxy
    context: Any
    page: Any

    async def close(self) -> None:
        try:
            await self.context.close()
        except Exception as error:  # the browser is gone already
            log.debug("closing a render context: %s", error)
        await self.proxy.close()


class RenderFailed(Exception):
    """A render ended without an image; ``code`` is the machine-readable reason."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Rendered:
    image: bytes
    content_type: str
    width: int
    height: int
    seconds: float
    bytes_downloaded: int
    refused: list[Refusal] = field(default_factory=list)
    load_finished: bool = True
    """False when the page's ``load`` event had not come by the deadline (the image shows it as it was)."""


def chromium_problem(path: str) -> str | None:
    """Why Chromium cannot run from ``path``, or None when it looks runnable."""
    file = Path(path)
    if not file.exists():
        return f"Chromium is not installed at {path} (install Debian's chromium: make chromium)"
    if not os.access(file, os.X_OK):
        return f"{path} is not executable"
    return None


class Renderer:
    def __init__(self, settings: ScreenshotSettings, *, resolver: Resolver = system_resolver) -> None:
        self.settings = settings
        self.policy = AddressPolicy(allow_loopback=settings.allow_loopback)
        self._resolver = resolver
        self._playwright: Any = None
        self._browser: Any = None
        self._launching = asyncio.Lock()
        self.problem: str | None = None
        """Why the renderer cannot render (Chromium missing, failed to start); None when it can."""
        self.renders = 0
        """Renders started by this process (tests and the benchmark count them)."""
        self._spare: asyncio.Future[Prepared] | None = None
        self._closing = False

    async def start(self) -> None:
        """Start Chromium; on failure record the reason in :attr:`problem` instead of raising."""
        try:
            await self._ensure_browser()
        except RenderFailed as failure:
            log.error("screenshots unavailable: %s", failure.message)

    async def _ensure_browser(self) -> Any:
        async with self._launching:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            problem = chromium_problem(self.settings.chromium_path)
            if problem is not None:
                self.problem = problem
                raise RenderFailed(ErrorCode.SCREENSHOTS_UNAVAILABLE, problem)
            try:
                from playwright.async_api import async_playwright

                if self._playwright is None:
                    self._playwright = await async_playwright().start()
                self._browser = await self._playwright.chromium.launch(
                    executable_path=self.settings.chromium_path,
                    args=CHROMIUM_ARGS,
                    # Chromium's own sandbox needs an unprivileged user; as root it cannot start.
                    chromium_sandbox=os.geteuid() != 0,
                    timeout=30_000,
                )
            except Exception as error:
                self.problem = f"Chromium did not start: {str(error).splitlines()[0][:300]}"
                raise RenderFailed(ErrorCode.SCREENSHOTS_UNAVAILABLE, self.problem) from None
            self.problem = None
            log.info("screenshot renderer: Chromium %s started", self._browser.version)
            return self._browser

    async def close(self) -> None:
        self._closing = True
        spare, self._spare = self._spare, None
        if spare is not None:
            try:
                await (await spare).close()
            except Exception as error:
                log.debug("closing the spare render context: %s", error)
        if self._browser is not None:
            try:
                await self._browser.close()
            except Exception as error:  # already gone
                log.debug("closing Chromium: %s", error)
            self._browser = None
        if self._playwright is not None:
            try:
                await self._playwright.stop()
            except Exception as error:  # the driver was stopped with us (Ctrl-C reaches the group)
                log.debug("stopping Playwright: %s", error)
            self._playwright = None

    async def _open(self, browser: Any, viewport_name: str, *, javascript: bool = True) -> Prepared:
        """A new context (its own proxy) and page: nothing of an earlier render is in it."""
        viewport = VIEWPORTS[viewport_name]
        proxy = RenderProxy(self.policy, max_bytes=self.settings.max_page_bytes, resolver=self._resolver)
        proxy_url = await proxy.start()
        try:
            context = await browser.new_context(
                viewport={"width": viewport.width, "height": viewport.height},
                device_scale_factor=1,
                is_mobile=viewport.mobile,
                has_touch=viewport.mobile,
                user_agent=MOBILE_USER_AGENT if viewport.mobile else None,
                proxy={"server": proxy_url},
                service_workers="block",
                accept_downloads=False,
                java_script_enabled=javascript,
            )
            page = await context.new_page()
        except BaseException:
            await proxy.close()
            raise
        context.on("page", lambda opened: _close_popup(opened, page))
        return Prepared(viewport_name, proxy, context, page)

    async def _take(self, browser: Any, viewport_name: str) -> Prepared:
        """The spare context prepared after the last render if it fits, else a new one.

        A spare is opened once, never navigated before its render, and closed after it, so every
        render still gets a fresh context; preparing it between renders takes Chromium's context
        start-up (a few hundred ms) off the agent's wait.
        """
        spare, self._spare = self._spare, None
        if spare is not None:
            try:
                prepared = await spare
            except Exception as error:  # the browser went away meanwhile: open a new one below
                log.debug("spare render context failed: %s", error)
            else:
                if prepared.viewport_name == viewport_name and prepared.page.context.browser is browser:
                    return prepared
                await prepared.close()
        return await self._open(browser, viewport_name)

    def _prepare_spare(self, browser: Any) -> None:
        if self._spare is None and not self._closing:
            self._spare = asyncio.ensure_future(self._open(browser, "desktop"))

    async def render(self, url: str, viewport_name: str) -> Rendered:
        """Render ``url`` (already normalised and checked by web) in a fresh context."""
        viewport = VIEWPORTS[viewport_name]
        browser = await self._ensure_browser()
        self.renders += 1
        started = time.perf_counter()
        limit = self.settings.timeout_ms / 1000
        prepared: Prepared | None = None
        try:
            async with asyncio.timeout(limit):
                prepared = await self._take(browser, viewport_name)
                self._prepare_spare(browser)
                return await _unless_over_limit(
                    self._shoot(prepared.page, url, prepared.proxy, started, limit, viewport),
                    prepared.proxy,
                    self.settings.max_page_bytes,
                )
        except TimeoutError:
            raise RenderFailed(
                ErrorCode.RENDER_TIMEOUT, f"The page did not load within {limit:g} s."
            ) from None
        finally:
            if prepared is not None:
                await prepared.close()

    async def render_snapshot(self, html: str, url: str, viewport_name: str) -> Rendered:
        """Draw a widget's DOM snapshot as the document at ``url`` (already checked by web).

        The document request is answered with ``html``, so relative links resolve against the
        page's own address; every other request goes through the filtering proxy like a URL
        render's. JavaScript is off in this context: the widget removed scripts and handlers,
        and nothing in the copy can run even if a page smuggled some past it.
        """
        browser = await self._ensure_browser()
        self.renders += 1
        started = time.perf_counter()
        limit = self.settings.timeout_ms / 1000
        prepared: Prepared | None = None
        body = html.encode()

        async def fulfil(route: Any) -> None:
            await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)

        try:
            async with asyncio.timeout(limit):
                prepared = await self._open(browser, viewport_name, javascript=False)
                await prepared.page.route(lambda address: address == url, fulfil)
                return await _unless_over_limit(
                    self._shoot(prepared.page, url, prepared.proxy, started, limit, VIEWPORTS[viewport_name]),
                    prepared.proxy,
                    self.settings.max_page_bytes,
                )
        except TimeoutError:
            raise RenderFailed(
                ErrorCode.RENDER_TIMEOUT, f"The snapshot did not load within {limit:g} s."
            ) from None
        finally:
            if prepared is not None:
                await prepared.close()

    async def _shoot(
        self, page: Any, url: str, proxy: RenderProxy, started: float, limit: float, viewport: Viewport
    ) -> Rendered:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        def remaining_ms(reserve: float) -> float:
            return max((limit - reserve - (time.perf_counter() - started)) * 1000, 100)

        try:
            response = await page.goto(url, wait_until="domcontentloaded", timeout=remaining_ms(1.5))
        except PlaywrightTimeout:
            raise TimeoutError from None
        except PlaywrightError as error:
            raise self._navigation_failure(proxy, str(error)) from None
        if proxy.stats.over_limit:
            raise _too_large(self.settings.max_page_bytes)
        if response is not None:
            refused = (await response.all_headers()).get(REFUSED_HEADER)
            if refused is not None:
                raise RenderFailed(ErrorCode.ADDRESS_NOT_ALLOWED, f"The page was refused: {refused}")
        load_finished = True
        try:
            await page.wait_for_load_state("load", timeout=remaining_ms(1.5))
        except PlaywrightTimeout:
            load_finished = False  # a slow subresource: show the page as it is now
        if proxy.stats.over_limit:
            raise _too_large(self.settings.max_page_bytes)
        image = await self._encode(page)
        return Rendered(
            image=image,
            content_type=CONTENT_TYPE,
            width=viewport.width,
            height=viewport.height,
            seconds=time.perf_counter() - started,
            bytes_downloaded=proxy.stats.bytes_received,
            refused=list(proxy.stats.refused),
            load_finished=load_finished,
        )

    def _navigation_failure(self, proxy: RenderProxy, text: str) -> RenderFailed:
        if proxy.stats.over_limit:
            return _too_large(self.settings.max_page_bytes)
        first_line = text.splitlines()[0] if text else "navigation failed"
        if proxy.stats.refused and ("ERR_TUNNEL" in first_line or "ERR_" in first_line):
            refusal = proxy.stats.refused[0]
            return RenderFailed(
                ErrorCode.ADDRESS_NOT_ALLOWED, f"{refusal.target} was refused: {refusal.reason}"
            )
        return RenderFailed(ErrorCode.PAGE_UNREACHABLE, f"The page could not be loaded: {first_line[:300]}")

    async def _encode(self, page: Any) -> bytes:
        for quality in JPEG_QUALITIES:
            image: bytes = await page.screenshot(type="jpeg", quality=quality, timeout=3000)
            if len(image) <= self.settings.max_image_bytes:
                return image
        raise RenderFailed(
            ErrorCode.IMAGE_TOO_LARGE,
            f"The image stays above {self.settings.max_image_bytes} bytes even at the lowest quality.",
        )


async def _unless_over_limit(shoot: Any, proxy: RenderProxy, max_bytes: int) -> Rendered:
    """Run the render, but end it as soon as the page passes its byte limit."""
    render = asyncio.ensure_future(shoot)
    over = asyncio.ensure_future(proxy.over_limit.wait())
    try:
        await asyncio.wait({render, over}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        over.cancel()
        if not render.done():
            render.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await render
    if proxy.stats.over_limit:
        raise _too_large(max_bytes)
    rendered: Rendered = render.result()
    return rendered


def _too_large(limit: int) -> RenderFailed:
    return RenderFailed(ErrorCode.PAGE_TOO_LARGE, f"The page downloads more than {limit} bytes.")


def _close_popup(opened: Any, own_page: Any) -> None:
    """Pop-ups (``window.open``, ``target=_blank`` clicks) are closed as soon as they open."""
    if opened is not own_page:
        asyncio.get_running_loop().create_task(opened.close())
