"""Benchmark: screenshots. Warm render time (simple and heavy page), cache hits through web, worker RSS.

    python bench/screenshots.py [--renders 20] [--runs 3] [--duration 10] [--connections 16]

1. Render time with a warm browser: the screenshot worker's :class:`Renderer` (real Chromium,
   a fresh context and filtering proxy per render, as in production) renders a loopback test
   page ``--renders`` times per run: the simple page (one coloured block) and a heavy one
   (1,500 styled cards, 40 SVG images). p50 and p99 per run.
2. The worker's memory with the browser running: RSS of the process and of its Playwright
   driver and Chromium processes, summed (an upper bound: Chromium's processes share pages).
3. Cache hits through ``web`` (granian, 1 worker): one rendered image in Redis, then wrk on
   ``GET /api/v1/projects/{p}/screenshots/{handle}`` (the image, ~30-200 KB) with an API key.
   Baseline, side by side: ``GET /healthz`` on the same server.
Targets (issue #14): warm render p50 <= 1 s for the simple page; cache hit p99 <= 10 ms.
Each figure: median and worst of --runs. Embedded servers unless DATABASE_URL / REDIS_URL are set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import percentile  # noqa: E402
from bench.api_conversations import free_port, wrk  # noqa: E402
from server.embedded import EmbeddedServers  # noqa: E402


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        stack.extend(children.get(current, []))
    return total


async def render_times(renders: int, runs: int) -> tuple[dict[str, list[tuple[float, float]]], bytes, int]:
    from server.screenshots.renderer import Renderer
    from server.settings import ScreenshotSettings
    from tests.screenshots.site import start_site

    site, runner = await start_site()
    renderer = Renderer(ScreenshotSettings(allow_loopback=True))
    await renderer.start()
    if renderer.problem:
        raise SystemExit(f"cannot render: {renderer.problem}")
    pages = {"simple page": f"{site.url}/plain", "heavy page": f"{site.url}/heavy"}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in pages}
    image = b""
    try:
        for url in pages.values():  # warm: the browser, the page's resources in the OS cache
            for _ in range(3):
                await renderer.render(url, "desktop")
        for run in range(runs):
            for name, url in pages.items():
                seconds = []
                for _ in range(renders):
                    rendered = await renderer.render(url, "desktop")
                    seconds.append(rendered.seconds)
                    if name == "heavy page":
                        image = rendered.image
                p50, p99 = percentile(seconds, 0.5) * 1000, percentile(seconds, 0.99) * 1000
                results[name].append((p50, p99))
                print(
                    f"  run {run + 1} render {name:12s} p50 {p50:6.0f} ms  p99 {p99:6.0f} ms  "
                    f"({len(rendered.image) // 1024} KB JPEG)",
                    flush=True,
                )
        rss = tree_rss_kib(os.getpid())
    finally:
        await renderer.close()
        await runner.cleanup()
    return results, image, rss


async def seed_cached_image(image: bytes) -> tuple[str, str]:
    """A project, an agent key, and one handle whose image is in the cache: its href and the key."""
    from server.accounts.tables import User
    from server.database import connection_pool
    from server.redis_client import Keys, make_redis
    from server.screenshots import services
    from server.screenshots.schemas import HandleInfo, RenderJob
    from server.screenshots.urls import cache_digest
    from server.settings import get_settings
    from server.tenancy.apikeys import create_api_key
    from server.tenancy.queries import actor_for
    from server.tenancy.tables import Project, ProjectMember

    settings = get_settings()
    async with connection_pool(4):
        project = Project(name="Bench", allowed_origins=["https://shop.example"])
        await project.save()
        agent = User(username="shot@example.com", email="shot@example.com", password="!", active=True)
        await agent.save()
        await ProjectMember(project=project.id, user=agent.id, role="agent").save()
        key = await create_api_key(
            await actor_for(agent), name="b", project_id=None, read_only=True, expires_at=None
        )
    redis = make_redis(settings.redis)
    url = "https://shop.example/catalogue"
    digest = cache_digest(url, "desktop")
    handle = HandleInfo(
        id="s_bench",
        project_id=project.id,
        visitor_id=1,
        visitor_uid="v_bench",
        url=url,
        viewport="desktop",
        digest=digest,
        requested_by=agent.id,
        requested_at=time.time(),
    )
    await redis.hset(
        Keys.screenshot_handle(project.id, handle.id),
        mapping={
            "info": json.dumps({f: getattr(handle, f) for f in handle.__struct_fields__}),
            "render": "r_bench",
        },
    )
    job = RenderJob(
        project_id=project.id,
        digest=digest,
        url=url,
        viewport="desktop",
        render_id="r_bench",
        keep_seconds=7200,
    )
    await services.finish_render(redis, job, image, 7200)
    await redis.expire(Keys.screenshot_handle(project.id, handle.id), 7200)
    await redis.aclose()
    return f"/api/v1/projects/{project.id}/screenshots/{handle.id}", key.secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=20, help="renders per page per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per cache-hit run")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does it)")

    embedded = None
    env = dict(os.environ)
    if not env.get("DATABASE_URL") or not env.get("REDIS_URL"):
        embedded = EmbeddedServers(Path(tempfile.mkdtemp(prefix="parley-bench-")), database="parley_bench")
        env.update(embedded.start())
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    env.update(WEB_PORT=str(free_port()), WEB_WORKERS="1", LOG_LEVEL="WARNING")
    os.environ.update(env)
    web = None
    try:
        renders, image, rss_kib = asyncio.run(render_times(args.renders, args.runs))
        subprocess.run(
            [sys.executable, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True
        )
        href, secret = asyncio.run(seed_cached_image(image))
        web = subprocess.Popen(
            [sys.executable, "-m", "server", "web"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{env['WEB_PORT']}"
        for _ in range(100):
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        auth = {"Authorization": f"Bearer {secret}"}
        hit = httpx.get(base + href, headers=auth)
        assert hit.status_code == 200 and hit.headers["content-type"] == "image/jpeg", hit.text[:200]
        # Latency with one connection (what one agent's request costs), throughput with many.
        targets = {
            "baseline GET /healthz": (base + "/healthz", {}),
            "GET screenshot (cache hit)": (base + href, auth),
        }
        loads = {"1 connection": 1, f"{args.connections} connections": args.connections}
        hits: dict[str, list[tuple[float, float]]] = {
            f"{name} [{load}]": [] for name in targets for load in loads
        }
        for url, headers in targets.values():
            wrk(url, duration=3, connections=args.connections, threads=1, headers=headers)
        for run in range(args.runs):
            for name, (url, headers) in targets.items():
                for load, connections in loads.items():
                    rps, p99 = wrk(
                        url, duration=args.duration, connections=connections, threads=1, headers=headers
                    )
                    hits[f"{name} [{load}]"].append((rps, p99))
                    print(
                        f"  run {run + 1} {name:28s} {load:16s} {rps:8.0f} req/s  p99 {p99:6.2f} ms",
                        flush=True,
                    )

        print(
            f"\nscreenshots: {args.renders} renders x {args.runs} runs per page; image {len(hit.content) // 1024} KB; "
            f"wrk {args.connections} connections {args.duration}s x {args.runs}; nproc={os.cpu_count()}"
        )
        for name, runs in renders.items():
            p50 = [a for a, _ in runs]
            p99 = [b for _, b in runs]
            print(
                f"render {name:12s} p50 ms median {statistics.median(p50):6.0f} worst {max(p50):6.0f} | "
                f"p99 ms median {statistics.median(p99):6.0f} worst {max(p99):6.0f}"
            )
        for name, runs in hits.items():
            rps = [a for a, _ in runs]
            p99 = [b for _, b in runs]
            print(
                f"{name:28s} req/s median {statistics.median(rps):8.0f} worst {min(rps):8.0f} | "
                f"p99 ms median {statistics.median(p99):6.2f} worst {max(p99):6.2f}"
            )
        print(
            f"worker RSS with Chromium running (process + driver + browser, summed): {rss_kib / 1024:.0f} MB"
        )
        print("targets: simple render p50 <= 1000 ms; cache hit p99 <= 10 ms")
    finally:
        if web is not None:
            web.terminate()
            web.wait(timeout=20)
        if embedded is not None:
            embedded.remove()


if __name__ == "__main__":
    main()
