"""Benchmark: the visitor widget's weight and its cost to the host page, in headless Chromium.

    python bench/widget.py [--runs 3] [--sends 20]

Prints, beside the field's figures (Crisp's full load 160-230 KB compressed, Chatwoot's bundle
170 KB), the widget's sizes as `web` serves them (gzip and brotli), then measures over real
`web`, `realtime` and `worker` processes and Debian's Chromium:
- script tag -> visible launcher: from a mark just before the tag to the first animation frame
  with the launcher laid out, for a first visit (the session is created) and a returning one
  (the launcher is drawn from the stored session). Target <= 100 ms.
- the longest main-thread task on the host page, from Chromium's trace (top-level tasks on the
  renderer's main thread) during load, panel load and opening, beside the same page without the
  widget (the baseline). Target <= 20 ms.
- a visitor's send (Parley.send) -> the agent's receipt (python-socketio on /agent).
Each figure: median and worst of --runs (fresh browser context each run). Embedded servers
unless DATABASE_URL / REDIS_URL are set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from server.embedded import EmbeddedServers  # noqa: E402
from tests.processes import free_port  # noqa: E402

CHROMIUM = os.environ.get("PARLEY_CHROMIUM") or "/usr/bin/chromium"
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bench shop</title></head>
<body><h1>Bench shop</h1><p>{filler}</p>
<script>window.t0 = performance.now();
new MutationObserver(function check() {{
  var w = document.querySelector('parley-widget');
  var l = w && !w.hidden && w.shadowRoot && w.shadowRoot.querySelector('.launcher');
  if (l && l.getBoundingClientRect().width > 0 && !window.t1) requestAnimationFrame(function () {{ window.t1 = performance.now(); }});
}}).observe(document.documentElement, {{subtree: true, childList: true, attributes: true}});
</script>
{tag}
</body></html>"""


def sizes() -> None:
    from server.api.widget_assets import bundle

    files = bundle()
    rows = [("loader /widget.js", files.loader)] + [(f"/widget/{n}", a) for n, a in files.hashed.items()]
    print(f"{'file':34s} {'raw':>8s} {'gzip':>8s} {'brotli':>8s}")
    for name, asset in rows:
        print(f"{name:34s} {len(asset.raw):8d} {len(asset.gzip):8d} {len(asset.brotli):8d}")
    # The snapshot chunk loads only when an agent asks a project with DOM snapshots on for one.
    to_chat = [(name, asset) for name, asset in rows if "/snapshot." not in name]
    total_gzip = sum(len(a.gzip) for _, a in to_chat)
    total_br = sum(len(a.brotli) for _, a in to_chat)
    print(
        f"{'everything to chat':34s} {'':8s} {total_gzip:8d} {total_br:8d}   budget: loader <= 5120 gzip, total <= 40960"
    )
    print(
        f"field: Crisp 160-230 KB, Chatwoot 170 KB compressed -> {170 * 1024 / total_gzip:.0f}x lighter than Chatwoot"
    )


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f}  worst {max(values):7.1f}"


async def host_server(pages: dict[str, str]) -> tuple[Any, int]:
    from aiohttp import web

    app = web.Application()
    for path, text in pages.items():

        async def serve(request: web.Request, text: str = text) -> web.Response:
            return web.Response(text=text, content_type="text/html", headers={"cache-control": "no-store"})

        app.router.add_get(path, serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


def longest_tasks(trace: bytes, widget_url: str) -> tuple[float, float]:
    """(longest top-level task, longest one that ran widget code) in ms, on the renderer main
    thread of a Chromium trace. A task ran widget code when a script event inside it (compile,
    evaluate, function call) names a URL under ``widget_url``."""
    import bisect

    events = json.loads(trace)
    events = events["traceEvents"] if isinstance(events, dict) else events
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
    }
    tasks = sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("ph") == "X"
        and e.get("name") in ("RunTask", "ThreadControllerImpl::RunTask")
        and (e["pid"], e["tid"]) in main
    )
    starts = [start for start, _ in tasks]
    widget = 0.0
    for e in events:
        if e.get("ph") != "X" or (e.get("pid"), e.get("tid")) not in main:
            continue
        data = (e.get("args") or {}).get("data") or {}
        if widget_url not in str(data.get("url", "")) + str(data.get("scriptName", "")):
            continue
        index = bisect.bisect_right(starts, e["ts"]) - 1
        if index >= 0 and tasks[index][1] >= e["ts"]:
            widget = max(widget, (tasks[index][1] - tasks[index][0]) / 1000)
    overall = max(((end - start) / 1000 for start, end in tasks), default=0.0)
    return overall, widget


async def measure(web_url: str, realtime_url: str, secret: str, runs: int, sends: int) -> None:
    import socketio
    from playwright.async_api import async_playwright

    from server.accounts.tables import User
    from server.accounts.tokens import agent_token
    from server.tenancy.tables import Project, ProjectMember

    project = Project(name="Bench shop", allowed_origins=[])
    await project.save()
    user = User(
        username="bench@example.com",
        email="bench@example.com",
        name="Bench agent",
        password="x" * 60,
        active=True,
    )
    await user.save()
    await ProjectMember(project=project.id, user=user.id, role=ProjectMember.ProjectRole.AGENT.value).save()
    tag = f'<script src="{web_url}/widget.js" data-project="{project.public_key}" async></script>'
    filler = "Lorem ipsum dolor sit amet. " * 200
    runner, port = await host_server(
        {"/": PAGE.format(filler=filler, tag=tag), "/baseline": PAGE.format(filler=filler, tag="")}
    )
    origin = f"http://127.0.0.1:{port}"
    await Project.update({Project.allowed_origins: [origin]}).where(Project.id == project.id)

    received: dict[str, float] = {}
    arrived = asyncio.Event()

    def on_message(event: dict[str, Any]) -> None:
        received.setdefault(event["data"]["body"], time.time() * 1000)
        arrived.set()

    agent = socketio.AsyncClient()
    agent.on("message.created", on_message, namespace="/agent")
    await agent.connect(
        realtime_url,
        namespaces=["/agent"],
        auth={"token": agent_token(user.id, secret)[0]},
        transports=["websocket"],
    )
    first, returning, tasks, with_widget, baseline, latency = [], [], [], [], [], []
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for run in range(runs):
            context = await browser.new_context()
            page = await context.new_page()
            await browser.start_tracing(page=page, categories=["devtools.timeline", "toplevel"])
            await page.goto(origin + "/")
            await page.wait_for_function("() => window.t1")
            first.append(await page.evaluate("() => window.t1 - window.t0"))
            await page.evaluate("() => new Promise((r) => Parley.on('ready', r) && Parley.open())")
            await page.locator("parley-widget .panel").wait_for()
            overall, by_widget = longest_tasks(await browser.stop_tracing(), web_url)
            tasks.append(by_widget)
            with_widget.append(overall)
            await page.goto(origin + "/")
            await page.wait_for_function("() => window.t1")
            returning.append(await page.evaluate("() => window.t1 - window.t0"))
            await page.evaluate("() => Parley.open()")
            await page.locator("parley-widget .panel").wait_for()
            await asyncio.sleep(0.5)
            for number in range(sends):
                body = f"run {run} message {number} {secrets.token_hex(4)}"
                sent_at = await page.evaluate(
                    "(b) => { const t = Date.now(); Parley.send(b); return t; }", body
                )
                async with asyncio.timeout(10):
                    while body not in received:
                        arrived.clear()
                        await arrived.wait()
                latency.append(received[body] - sent_at)
            await context.close()

            context = await browser.new_context()
            page = await context.new_page()
            await browser.start_tracing(page=page, categories=["devtools.timeline", "toplevel"])
            await page.goto(origin + "/baseline")
            await page.wait_for_function("() => window.t0")  # the same Playwright calls as above
            await page.evaluate("() => 1")
            await asyncio.sleep(1.0)
            baseline.append(longest_tasks(await browser.stop_tracing(), web_url)[0])
            await context.close()
            print(
                f"  run {run + 1}: launcher {first[-1]:6.1f} ms (first) {returning[-1]:6.1f} ms (returning), "
                f"longest task running widget code {tasks[-1]:5.1f} ms (any task {with_widget[-1]:5.1f}, "
                f"without the widget {baseline[-1]:5.1f}), "
                f"send->agent median {statistics.median(latency[-sends:]):5.1f} ms",
                flush=True,
            )
        await browser.close()
    await agent.disconnect()
    await runner.cleanup()
    print(f"script tag -> visible launcher, first visit (ms)   {spread(first)}   target <= 100")
    print(f"script tag -> visible launcher, returning (ms)     {spread(returning)}   target <= 100")
    print(f"longest main-thread task running widget code (ms) {spread(tasks)}   target <= 20")
    print(f"longest main-thread task of any kind (ms)         {spread(with_widget)}")
    print(f"longest main-thread task, page without it (ms)    {spread(baseline)}   (baseline)")
    print(f"visitor send -> agent receipt (ms, {len(latency)} sends)   {spread(latency)}")


async def run_measure(web_url: str, realtime_url: str, secret: str, runs: int, sends: int) -> None:
    from server.database import connection_pool

    async with connection_pool(2):
        await measure(web_url, realtime_url, secret, runs, sends)


def wait_ready(url: str, what: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sends", type=int, default=10, help="messages sent per run")
    args = parser.parse_args()
    sizes()
    embedded = None
    env = dict(os.environ)
    if not env.get("DATABASE_URL") or not env.get("REDIS_URL"):
        embedded = EmbeddedServers(Path(tempfile.mkdtemp(prefix="parley-bench-")), database="parley_bench")
        env.update(embedded.start())
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    web_port, realtime_port = free_port(), free_port()
    env.update(
        WEB_PORT=str(web_port),
        REALTIME_PORT=str(realtime_port),
        REALTIME_PUBLIC_URL=f"http://127.0.0.1:{realtime_port}",
        LOG_LEVEL="WARNING",
    )
    os.environ.update(env)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run(
            [sys.executable, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True
        )
        for command in (
            ["-m", "server", "web"],
            ["-m", "server", "realtime"],
            ["-m", "saq", "tasks.worker.settings"],
        ):
            processes.append(
                subprocess.Popen([sys.executable, *command], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
            )
        web_url, realtime_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{realtime_port}"
        wait_ready(web_url + "/readyz", "web")
        wait_ready(realtime_url + "/healthz", "realtime")
        time.sleep(1.0)  # the worker's start-up
        asyncio.run(run_measure(web_url, realtime_url, env["SECRET_KEY"], args.runs, args.sends))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        if embedded is not None:
            embedded.remove()


if __name__ == "__main__":
    main()
