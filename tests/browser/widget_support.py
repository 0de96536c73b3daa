"""What the widget's browser tests share: a customer's static host page and an agent.

The host page is a fake of something outside the system (a customer's site), served on its own
loopback port so that its origin differs from Parley's. It can carry a strict CSP and a hostile
stylesheet. The agent is the official python-socketio client on ``/agent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio
from aiohttp import web

from server.accounts.tokens import agent_token
from tests.processes import free_port

HOSTILE_CSS = """
* { all: unset !important; }
html, body, div { display: block !important; }
body::before { content: "cover"; position: fixed; inset: 0; z-index: 2147483647; pointer-events: none; }
.cover { position: fixed; inset: 0; z-index: 999999999; }
parley-widget { display: none !important; opacity: 0 !important; transform: scale(0) !important; }
"""


@dataclass
class HostSite:
    """``http://127.0.0.1:<port>``: pages with the widget's script tag."""

    web_url: str
    public_key: str
    csp: bool = True
    hostile: bool = False
    extra_script: str = ""
    """A file of the host's own JavaScript (served at /host.js), e.g. calls to window.Parley."""
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    """More files to serve: path -> (content type, text)."""
    gateway: str = ""
    """The realtime gateway's websocket origin, for the page's connect-src."""
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def page(self, request: web.Request) -> web.Response:
        title = html.escape(request.query.get("title", "Shop"))
        body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/host.css"></head>
<body><main><h1>{title}</h1><p>A customer's page.</p><a id="next" href="#details">Details</a>
{'<div class="cover"></div>' if self.hostile else ""}</main>
{'<script src="/host.js"></script>' if self.extra_script else ""}
<script src="{self.web_url}/widget.js" data-project="{self.public_key}" async></script>
</body></html>"""
        headers = {"cache-control": "max-age=600"}
        if self.csp:
            headers["content-security-policy"] = (
                f"default-src 'none'; script-src 'self' {self.web_url}; "
                f"connect-src {self.web_url} {self.gateway}; style-src 'self'; img-src 'self' data:; base-uri 'none'"
            )
        return web.Response(text=body, content_type="text/html", headers=headers)

    async def start(self, realtime_url: str) -> None:
        self.gateway = realtime_url.replace("http://", "ws://")

        async def page(request: web.Request) -> web.Response:
            return self.page(request)

        async def css(request: web.Request) -> web.Response:
            text = HOSTILE_CSS if self.hostile else "body { font-family: serif; margin: 2rem; }"
            return web.Response(text=text, content_type="text/css", headers={"cache-control": "max-age=600"})

        async def script(request: web.Request) -> web.Response:
            return web.Response(
                text=self.extra_script,
                content_type="text/javascript",
                headers={"cache-control": "max-age=600"},
            )

        app = web.Application()
        app.router.add_get("/", page)
        app.router.add_get("/other", page)
        app.router.add_get("/host.css", css)
        app.router.add_get("/host.js", script)
        for path, (content_type, text) in self.files.items():

            async def serve(
                request: web.Request, content_type: str = content_type, text: str = text
            ) -> web.Response:
                policy = self.page(request).headers.get("content-security-policy")
                headers = (
                    {"content-security-policy": policy} if policy and content_type == "text/html" else {}
                )
                return web.Response(text=text, content_type=content_type, headers=headers)

            app.router.add_get(path, serve)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@contextlib.asynccontextmanager
async def host_site(
    web_url: str, realtime_url: str, public_key: str, **options: Any
) -> AsyncIterator[HostSite]:
    site = HostSite(web_url=web_url, public_key=public_key, **options)
    await site.start(realtime_url)
    try:
        yield site
    finally:
        await site.stop()


@dataclass
class Agent:
    """An agent on ``/agent`` (python-socketio) that records what it receives."""

    client: socketio.AsyncClient
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [data for event, data in self.events if event == name]

    def messages(self, sender_kind: str = "visitor") -> list[dict[str, Any]]:
        return [e["data"] for e in self.named("message.created") if e["data"]["sender_kind"] == sender_kind]

    async def wait_for(self, predicate: Callable[[], Any], within: float = 15.0) -> Any:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out; agent saw: {self.events[-20:]}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    async def call(self, event: str, payload: dict[str, Any]) -> Any:
        return await self.client.call(event, payload, namespace="/agent", timeout=10)


AGENT_EVENTS = [
    "message.created",
    "typing.started",
    "typing.stopped",
    "conversation.created",
    "visitor.navigated",
    "screenshot.ready",
    "screenshot.failed",
]


@contextlib.asynccontextmanager
async def agent_socket(realtime_url: str, secret_key: str, user_id: int) -> AsyncIterator[Agent]:
    client = socketio.AsyncClient(reconnection=True)
    agent = Agent(client)

    def recorder(name: str) -> Callable[[dict[str, Any]], None]:
        def record(data: dict[str, Any]) -> None:
            agent.events.append((name, data))
            agent.changed.set()

        return record

    for name in AGENT_EVENTS:
        client.on(name, recorder(name), namespace="/agent")
    await client.connect(
        realtime_url,
        namespaces=["/agent"],
        auth={"token": agent_token(user_id, secret_key)[0]},
        transports=["websocket"],
        wait_timeout=10,
    )
    try:
        yield agent
    finally:
        await client.disconnect()


@dataclass
class World:
    project: Any
    user: Any
    site: HostSite
    agent: Agent | None

    def online(self) -> Agent:
        """The connected agent (a world made with ``online_agent=True``)."""
        assert self.agent is not None
        return self.agent


@contextlib.asynccontextmanager
async def widget_world(
    web_url: str,
    realtime_url: str,
    secret_key: str,
    *,
    allowed: bool = True,
    online_agent: bool = True,
    project_values: dict[str, Any] | None = None,
    **site_options: Any,
) -> AsyncIterator[World]:
    """A project with an agent (Anna, connected unless ``online_agent=False``) and a host site
    that the project allows (or not)."""
    from server.tenancy.tables import Project, ProjectMember
    from tests.factories import make_member, make_project, make_user

    project = await make_project(allowed_origins=[], **(project_values or {}))
    user = await make_user(name="Anna")
    await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    async with contextlib.AsyncExitStack() as stack:
        site = await stack.enter_async_context(
            host_site(web_url, realtime_url, project.public_key, **site_options)
        )
        agent = (
            await stack.enter_async_context(agent_socket(realtime_url, secret_key, user.id))
            if online_agent
            else None
        )
        if allowed:
            await Project.update({Project.allowed_origins: [site.origin]}).where(Project.id == project.id)
        yield World(project, user, site, agent)


async def panel_of(page: Any, url: str, *, open_panel: bool = True) -> Any:
    """Go to ``url``, wait for the launcher, open the panel; returns the panel's locator."""
    from playwright.async_api import expect

    await page.goto(url)
    widget = page.locator("parley-widget")
    await expect(widget.locator(".launcher")).to_be_visible()
    if open_panel:
        await widget.locator(".launcher").click()
        await expect(widget.locator(".panel")).to_be_visible()
    return widget.locator(".panel")


async def type_and_send(panel: Any, text: str) -> None:
    box = panel.locator("#parley-input")
    await box.fill(text)
    await box.press("Enter")
