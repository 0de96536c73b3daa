"""Benchmark: the console's server time per page, and the bytes a page costs a browser.

    python bench/console.py [--rows 1000] [--requests 300] [--runs 3]

Seeds one project with ``--rows`` members, canned replies and API keys, and the installation with
``--rows`` projects and users, then asks each paged page (50 rows) ``--requests`` times through
the app in process (httpx's ASGI transport on the app's own event loop: the server's time, no
network, no granian). Prints p50 and p99 per page (median and worst over ``--runs``) and the
gzip size of each page's HTML plus our CSS and JS (htmx itself excluded).
Targets (issue #11): p50 <= 10 ms per page; our CSS + JS <= 30 KB gzip.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import logging
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import percentile  # noqa: E402
from server.embedded import EmbeddedServers  # noqa: E402
from tests.processes import PYTHON  # noqa: E402

PASSWORD = "bench password 123"
OUR_ASSETS = ("static/console.css", "static/js/console.js")


async def seed(rows: int) -> dict[str, int]:
    from server.accounts.passwords import hash_password
    from server.accounts.tables import User
    from server.chat.tables import CannedReply
    from server.database import connection_pool
    from server.tenancy.tables import ApiKey, Project, ProjectMember

    async with connection_pool(4):
        hashed = hash_password(PASSWORD)
        admin = User(
            username="admin@bench.example",
            email="admin@bench.example",
            password=hashed,
            global_role="admin",
            admin=True,
            active=True,
            name="Admin",
        )
        await admin.save()
        project = Project(name="Bench shop", allowed_origins=["https://shop.example"])
        await project.save()
        users = [
            User(
                username=f"u{i}@bench.example",
                email=f"u{i}@bench.example",
                password=hashed,
                name=f"User {i}",
                active=True,
            )
            for i in range(rows)
        ]
        await User.insert(*users)
        ids = [row["id"] for row in await User.select(User.id).where(User.email.like("u%@bench.example"))]
        await ProjectMember.insert(
            ProjectMember(project=project.id, user=admin.id, role="manager"),
            *[ProjectMember(project=project.id, user=i, role="agent") for i in ids],
        )
        await CannedReply.insert(
            *[
                CannedReply(
                    project=project.id,
                    shortcut=f"reply{i:04d}",
                    title=f"Reply {i}",
                    body="Thanks for writing! " * 5,
                )
                for i in range(rows)
            ]
        )
        await ApiKey.insert(
            *[
                ApiKey(
                    user=admin.id,
                    project=project.id,
                    name=f"key {i}",
                    prefix=f"prly_{i:08x}",
                    secret_hash=secrets.token_hex(32),
                )
                for i in range(rows)
            ]
        )
        await Project.insert(*[Project(name=f"Project {i}") for i in range(rows)])
        return {"project": project.id}


async def measure(requests: int, world: dict[str, int]) -> tuple[dict[str, list[float]], dict[str, int]]:
    import httpx

    from server.settings import get_settings
    from server.web import create_app

    app = create_app(get_settings())
    # The figures are the output: no line per request from httpx (INFO) or our access log.
    for name in ("httpx", "httpcore", "parley.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    base = f"/console/projects/{world['project']}"
    pages = {
        "members": f"{base}/members",
        "canned replies": f"{base}/canned-replies",
        "api keys": "/console/api-keys",
        "admin projects": "/console/admin/projects",
        "admin users": "/console/admin/users",
        "settings": f"{base}/settings",
    }
    times: dict[str, list[float]] = {name: [] for name in pages}
    sizes: dict[str, int] = {}
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client:
            login = await client.get("/console/login")
            token = re.search(r'name="_csrf_token" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
            await client.post(
                "/console/login",
                data={
                    "email": "admin@bench.example",
                    "password": PASSWORD,
                    "next": "/console/",
                    "_csrf_token": token,
                },
            )
            for name, path in pages.items():
                for _ in range(20):  # warm-up
                    assert (await client.get(path)).status_code == 200
                for _ in range(requests):
                    started = time.perf_counter()
                    response = await client.get(path)
                    times[name].append((time.perf_counter() - started) * 1000)
                sizes[name] = len(gzip.compress(response.content))
    return times, sizes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    embedded = None
    env = dict(os.environ)
    if not env.get("DATABASE_URL") or not env.get("REDIS_URL"):
        embedded = EmbeddedServers(Path(tempfile.mkdtemp(prefix="parley-bench-")), database="parley_bench")
        env.update(embedded.start())
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    env["LOG_LEVEL"] = "WARNING"
    env["WEB_ACCESS_LOG"] = "false"
    os.environ.update(env)
    try:
        subprocess.run(
            [PYTHON, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True
        )
        world = asyncio.run(seed(args.rows))
        runs = [asyncio.run(measure(args.requests, world)) for _ in range(args.runs)]
    finally:
        if embedded is not None:
            embedded.remove()
    assets = sum(len(gzip.compress((ROOT / path).read_bytes())) for path in OUR_ASSETS)
    print(f"console pages, {args.rows} rows each (50 per page), {args.requests} requests x {args.runs} runs")
    print(f"{'page':<16} {'p50 ms (median/worst)':>22} {'p99 ms (median/worst)':>22} {'HTML gzip':>10}")
    for name in runs[0][0]:
        p50 = [percentile(run[0][name], 0.5) for run in runs]
        p99 = [percentile(run[0][name], 0.99) for run in runs]
        print(
            f"{name:<16} {statistics.median(p50):>10.2f} / {max(p50):>8.2f}  {statistics.median(p99):>10.2f} / {max(p99):>8.2f}"
            f"  {runs[0][1][name] / 1024:>7.1f} KB"
        )
    print(f"our CSS + JS, gzip: {assets / 1024:.1f} KB (target <= 30 KB; htmx not counted)")
    worst = max(statistics.median([percentile(run[0][name], 0.5) for run in runs]) for name in runs[0][0])
    print(f"baseline ratio: worst page p50 {worst:.2f} ms / 10 ms target = {worst / 10:.2f}")


if __name__ == "__main__":
    main()
