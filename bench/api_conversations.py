"""Benchmark: the hydrated conversation list (50 rows) under granian, measured with wrk.

    python bench/api_conversations.py [--duration 10] [--connections 64] [--workers 2] [--runs 3]

Seeds a project with 200 conversations whose visitors have a current page and presence in Redis,
then loads ``GET /api/v1/projects/{id}/conversations?limit=50`` with an API key. The baseline,
measured side by side in the same run, is ``GET /healthz`` on the same server: the framework's
ceiling on this machine, so the ratio says how much of it the real endpoint keeps.
Target (DESIGN §11): >= 3,000 req/s with p99 <= 20 ms. Each figure: median and worst of --runs.
Uses the embedded servers unless DATABASE_URL / REDIS_URL are set. wrk (Debian package) is the
load client: it is C and costs a fraction of what the server does per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.embedded import EmbeddedServers  # noqa: E402
from tests.processes import free_port  # noqa: E402


async def seed(conversations: int) -> tuple[int, str]:
    import json

    from server.accounts.tables import User
    from server.chat.tables import Conversation, Visitor
    from server.database import connection_pool
    from server.redis_client import Keys, make_redis
    from server.settings import get_settings
    from server.tenancy.apikeys import create_api_key
    from server.tenancy.queries import actor_for
    from server.tenancy.tables import Project, ProjectMember

    settings = get_settings()
    async with connection_pool(4):
        project = Project(name="Bench", allowed_origins=["*"])
        await project.save()
        agent = User(username="bench@example.com", email="bench@example.com", password="!", active=True)
        await agent.save()
        await ProjectMember(project=project.id, user=agent.id, role="agent").save()
        redis = make_redis(settings.redis)
        now = datetime.now(UTC)
        for index in range(conversations):
            visitor = Visitor(project=project.id, uid=f"v_bench_{index}", name=f"Visitor {index}")
            await visitor.save()
            await Conversation(
                project=project.id,
                visitor=visitor.id,
                last_seq=3,
                last_message_at=now - timedelta(seconds=index),
            ).save()
            location = {"url": f"https://shop.example/product/{index}", "title": f"Product {index}"}
            await redis.set(Keys.visitor_location(project.id, visitor.uid), json.dumps(location), ex=3600)
            if index % 3:
                await redis.zadd(Keys.visitor_presence(project.id), {visitor.uid: time.time() + 3600})
        await redis.aclose()
        key = await create_api_key(
            await actor_for(agent), name="bench", project_id=None, read_only=True, expires_at=None
        )
        return project.id, key.secret


def wrk(
    url: str, *, duration: int, connections: int, threads: int, headers: dict[str, str]
) -> tuple[float, float]:
    """(requests per second, p99 latency in ms) from one wrk run."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"wrk saw errors:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99_text = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    assert p99_text is not None, output
    p99 = float(p99_text.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_text.group(2)]
    return rps, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first")
    parser.add_argument("--workers", type=int, default=2, help="granian worker processes")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does it)")

    embedded = None
    env = dict(os.environ)
    if not env.get("DATABASE_URL") or not env.get("REDIS_URL"):
        embedded = EmbeddedServers(Path(tempfile.mkdtemp(prefix="parley-bench-")), database="parley_bench")
        env.update(embedded.start())
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    env.update(WEB_PORT=str(free_port()), WEB_WORKERS=str(args.workers), LOG_LEVEL="WARNING")
    os.environ.update(env)
    web = None
    try:
        subprocess.run(
            [sys.executable, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True
        )
        project_id, secret = asyncio.run(seed(200))
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
        listing = f"{base}/api/v1/projects/{project_id}/conversations?limit=50"
        page = httpx.get(listing, headers=auth).json()
        assert len(page["items"]) == 50 and page["items"][1]["visitor"]["live"]["current_url"], page
        targets = {
            "baseline GET /healthz": (base + "/healthz", {}),
            "GET conversations (50, hydrated)": (listing, auth),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
        for url, headers in targets.values():
            # Steady state first: pools filled, statements prepared, caches warm.
            wrk(
                url, duration=args.warmup, connections=args.connections, threads=args.threads, headers=headers
            )
        for run in range(args.runs):  # interleaved, so both see the same machine noise
            for name, (url, headers) in targets.items():
                rps, p99 = wrk(
                    url,
                    duration=args.duration,
                    connections=args.connections,
                    threads=args.threads,
                    headers=headers,
                )
                results[name].append((rps, p99))
                print(f"  run {run + 1} {name:34s} {rps:8.0f} req/s  p99 {p99:6.1f} ms", flush=True)
        print(
            f"granian workers={args.workers}, wrk threads={args.threads} connections={args.connections}, "
            f"{args.duration}s x {args.runs} runs; nproc={os.cpu_count()}"
        )
        for name, runs in results.items():
            rps = [r for r, _ in runs]
            p99 = [p for _, p in runs]
            print(
                f"{name:34s} req/s median {statistics.median(rps):8.0f} worst {min(rps):8.0f} | "
                f"p99 ms median {statistics.median(p99):6.1f} worst {max(p99):6.1f}"
            )
        ratio = statistics.median(
            r for r, _ in results["GET conversations (50, hydrated)"]
        ) / statistics.median(r for r, _ in results["baseline GET /healthz"])
        print(f"ratio list / healthz baseline: {ratio:.2f}  (target: >= 3000 req/s, p99 <= 20 ms)")
    finally:
        if web is not None:
            web.terminate()
            web.wait(timeout=20)
        if embedded is not None:
            embedded.remove()


if __name__ == "__main__":
    main()
