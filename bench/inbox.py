"""Benchmark: the live inbox in headless Chromium against a real stack (web, realtime, worker).

    python bench/inbox.py [--rate 50] [--conversations 50] [--seconds 30] [--runs 3]
                          [--heap-minutes 10] [--heap-rate 10]

1. **send -> agent**: 50 python-socketio visitors (one conversation each) send ``--rate``
   messages/s in total for ``--seconds``. An agent has the inbox open on one of them. Measured:
   from ``message:send`` (the visitor's clock) to (a) the page's protocol client handing the
   ``message.created`` to the inbox (every message, every conversation) and (b) the message's
   element entering the open thread's DOM (a MutationObserver; that conversation's share).
   One machine, one clock (``Date.now()`` in the page, ``time.time()`` here: both wall clock).
   Target (DESIGN §11): p99 <= 100 ms into the DOM at 50 messages/s.
2. **first load**: 10,000 conversations and a 500-message thread open: from navigation start to
   ``performance.mark("inbox:ready")`` (list rendered, thread drawn). Target <= 500 ms.
3. **heap**: the tab's JS heap (after a forced GC, through the DevTools protocol) before and
   after ``--heap-minutes`` at ``--heap-rate`` messages/s into the open thread (which keeps at
   most 600 messages in the DOM; the list is one page of 50).
Each figure: median and worst of ``--runs``. Uses embedded servers unless DATABASE_URL/REDIS_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import percentile  # noqa: E402
from server.embedded import EmbeddedServers  # noqa: E402
from tests.processes import PYTHON, free_port, http_status, start, stop  # noqa: E402

PASSWORD = "bench password 123"
COMMANDS = {
    "web": [PYTHON, "-m", "server", "web"],
    "realtime": [PYTHON, "-m", "server", "realtime"],
    "worker": [PYTHON, "-m", "saq", "tasks.worker.settings"],
}
OBSERVE = """() => {
  // Installed once; each run only resets the arrays (a second listener would count twice).
  if (window.__bench) { window.__bench.events = []; window.__bench.dom = []; return; }
  window.__bench = {events: [], dom: []};
  window.parleyInbox.client.on("message.created", (e) => {
    const m = /^bench (\\d+)/.exec(e.data.body); if (m) window.__bench.events.push(Date.now() - Number(m[1]));
  });
  new MutationObserver((records) => {
    const now = Date.now();
    for (const r of records) for (const node of r.addedNodes) {
      const m = node.nodeType === 1 && /bench (\\d+)/.exec(node.textContent);
      if (m && node.dataset.seq) window.__bench.dom.push(now - Number(m[1]));
    }
  }).observe(document.getElementById("messages"), {childList: true});
}"""


async def seed(conversations: int, big_thread: int, filler: int) -> dict[str, Any]:
    """A project, an agent, ``conversations`` visitors with one message each, ``filler`` more
    conversations (SQL, fast) and one conversation of ``big_thread`` messages."""
    from server.accounts.services import create_user
    from server.database import connection_pool, engine
    from server.tenancy.tables import Project, ProjectMember

    async with connection_pool(4):
        project = Project(name="Bench shop", allowed_origins=["*"])
        await project.save()
        agent = await create_user(f"agent{secrets.token_hex(3)}@example.com", PASSWORD, name="Bench Agent")
        await ProjectMember(project=project.id, user=agent.id, role="agent").save()
        run = engine().run_ddl
        await run(
            f"INSERT INTO visitor (project, uid, name) SELECT {project.id}, 'v_fill_' || g, 'Filler ' || g "
            f"FROM generate_series(1, {filler + 1}) g"
        )
        await run(
            "INSERT INTO conversation (project, visitor, last_seq, last_message_at, last_message_preview, "
            "last_message_kind) SELECT v.project, v.id, 1, now() - (v.id || ' seconds')::interval, "
            f"'hello from ' || v.name, 'visitor' FROM visitor v WHERE v.project = {project.id}"
        )
        big = await run(
            f"SELECT c.id FROM conversation c JOIN visitor v ON v.id = c.visitor "
            f"WHERE v.uid = 'v_fill_{filler + 1}' AND c.project = {project.id}"
        )
        big_id = big[0]["id"]
        await run(
            "INSERT INTO message (project, conversation, seq, sender_kind, body, private, client_msg_id) "
            f"SELECT {project.id}, {big_id}, g, CASE WHEN g % 3 = 0 THEN 'agent' ELSE 'visitor' END, "
            f"'history message ' || g, false, gen_random_uuid() FROM generate_series(1, {big_thread}) g"
        )
        await run(
            f"UPDATE conversation SET last_seq = {big_thread}, last_message_at = now() WHERE id = {big_id}"
        )
        return {"project_id": project.id, "agent_email": agent.email, "big_id": big_id}


class Stack:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for name, command in COMMANDS.items():
            self.processes[name] = start(command, self.env, self.logs / f"{name}.log")
        web = f"http://127.0.0.1:{self.env['WEB_PORT']}"
        for _ in range(400):
            worker_ready = "worker ready on queue" in (self.logs / "worker.log").read_text(errors="replace")
            rt = http_status(f"http://127.0.0.1:{self.env['REALTIME_PORT']}/healthz") == 200
            if http_status(web + "/readyz") == 200 and rt and worker_ready:
                return
            time.sleep(0.1)
        raise SystemExit("the stack did not start; see " + str(self.logs))

    def stop(self) -> None:
        for process in self.processes.values():
            stop(process, group=True)


async def sign_in(page: Any, web: str, email: str, path: str) -> None:
    await page.goto(f"{web}/console/login?next={path}")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{path.split('?')[0]}*")


async def visitors(stack_env: dict[str, str], project_id: int, count: int) -> list[Any]:
    import socketio

    from server.accounts.tokens import visitor_token

    clients = []
    for index in range(count):
        client = socketio.AsyncClient(reconnection=False)
        token, _ = visitor_token(project_id, f"v_bench_{index}", stack_env["SECRET_KEY"])
        await client.connect(
            f"http://127.0.0.1:{stack_env['REALTIME_PORT']}",
            namespaces=["/visitor"],
            auth={"token": token},
            transports=["websocket"],
        )
        clients.append(client)
    return clients


async def send_at(clients: list[Any], rate: float, seconds: float) -> int:
    """Round-robin over the visitors at ``rate`` messages/s (paced by the clock, not by acks)."""
    interval, sent, started = 1.0 / rate, 0, time.monotonic()
    pending: set[asyncio.Task[Any]] = set()
    while time.monotonic() - started < seconds:
        client = clients[sent % len(clients)]
        payload = {"body": f"bench {int(time.time() * 1000)}", "client_msg_id": str(uuid.uuid4())}
        task = asyncio.create_task(client.call("message:send", payload, namespace="/visitor"))
        pending.add(task)
        task.add_done_callback(pending.discard)
        sent += 1
        await asyncio.sleep(max(0.0, started + sent * interval - time.monotonic()))
    await asyncio.gather(*pending, return_exceptions=True)
    return sent


async def measure(args: argparse.Namespace, env: dict[str, str], world: dict[str, Any]) -> None:
    from playwright.async_api import async_playwright

    web = f"http://127.0.0.1:{env['WEB_PORT']}"
    base = f"/console/projects/{world['project_id']}/inbox"
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = await (await browser.new_context(viewport={"width": 1400, "height": 900})).new_page()
        await sign_in(page, web, world["agent_email"], base + "?filter=all")

        loads = []
        for _ in range(args.runs):
            await page.goto(f"{web}{base}/{world['big_id']}?filter=all")
            await page.wait_for_function("() => performance.getEntriesByName('inbox:ready').length > 0")
            loads.append(
                await page.evaluate("() => performance.getEntriesByName('inbox:ready')[0].startTime")
            )
        counted = await page.locator("#messages [data-seq]").count()
        print(
            f"first load, {args.filler + 1} conversations, thread of {args.big_thread} (newest {counted} drawn):"
        )
        print(
            f"  ready after ms: median {statistics.median(loads):.0f} worst {max(loads):.0f}  (target <= 500)"
        )

        clients = await visitors(env, world["project_id"], args.conversations)
        await clients[0].call("message:send", {"body": "warm-up"}, namespace="/visitor")
        await asyncio.sleep(3)
        first = await page.evaluate(
            "() => document.querySelector('.conversation-row')?.dataset.conversationId"
        )
        await page.goto(f"{web}{base}/{first}?filter=all")
        await page.locator('#connection[data-state="connected"]').wait_for()
        p50s, p99s, dom50, dom99, counts = [], [], [], [], []
        for run in range(args.runs):
            await page.evaluate(OBSERVE)
            sent = await send_at(clients, args.rate, args.seconds)
            await asyncio.sleep(3)
            result = await page.evaluate("() => window.__bench")
            events, dom = result["events"], result["dom"]
            p50s.append(percentile(events, 0.5))
            p99s.append(percentile(events, 0.99))
            dom50.append(percentile(dom, 0.5))
            dom99.append(percentile(dom, 0.99))
            counts.append((sent, len(events), len(dom)))
            print(
                f"  run {run + 1}: sent {sent}, client got {len(events)} (p50 {p50s[-1]:.0f} / p99 {p99s[-1]:.0f} ms), "
                f"open thread DOM {len(dom)} (p50 {dom50[-1]:.0f} / p99 {dom99[-1]:.0f} ms)",
                flush=True,
            )
        print(
            f"send -> agent at {args.rate}/s over {args.conversations} conversations, {args.seconds}s x {args.runs}:"
        )
        print(
            f"  to the page's client: p50 median {statistics.median(p50s):.0f} ms, p99 median "
            f"{statistics.median(p99s):.0f} worst {max(p99s):.0f} ms"
        )
        print(
            f"  into the thread's DOM: p50 median {statistics.median(dom50):.0f} ms, p99 median "
            f"{statistics.median(dom99):.0f} worst {max(dom99):.0f} ms  (target p99 <= 100)"
        )

        if args.heap_minutes > 0:
            cdp = await page.context.new_cdp_session(page)

            async def heap() -> float:
                await cdp.send("HeapProfiler.collectGarbage")
                usage = await cdp.send("Runtime.getHeapUsage")
                return float(usage["usedSize"]) / 1e6

            before = await heap()
            await send_at(clients[:1], args.heap_rate, args.heap_minutes * 60)
            await asyncio.sleep(3)
            after = await heap()
            drawn = await page.locator("#messages .message").count()
            print(
                f"heap after {args.heap_minutes} min at {args.heap_rate}/s into the open thread: "
                f"{before:.1f} MB -> {after:.1f} MB ({drawn} messages in the DOM, bounded at 600)"
            )
        for client in clients:
            await client.disconnect()
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big-thread", type=int, default=500)
    parser.add_argument("--filler", type=int, default=10_000)
    parser.add_argument("--heap-minutes", type=float, default=10)
    parser.add_argument("--heap-rate", type=float, default=10)
    args = parser.parse_args()
    embedded = None
    env = dict(os.environ)
    if not env.get("DATABASE_URL") or not env.get("REDIS_URL"):
        embedded = EmbeddedServers(Path(tempfile.mkdtemp(prefix="parley-bench-")), database="parley_bench")
        env.update(embedded.start())
    realtime_port = free_port()
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    env.update(
        WEB_PORT=str(free_port()),
        REALTIME_PORT=str(realtime_port),
        REALTIME_PUBLIC_URL=f"http://127.0.0.1:{realtime_port}",
        LOG_LEVEL="INFO",  # the worker says "ready" at INFO
    )
    os.environ.update(env)
    stack = Stack(env, Path(tempfile.mkdtemp(prefix="parley-bench-logs-")))
    try:
        subprocess.run(
            [PYTHON, "-m", "server", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True
        )
        world = asyncio.run(seed(args.conversations, args.big_thread, args.filler))
        stack.start()
        asyncio.run(measure(args, env, world))
    finally:
        stack.stop()
        if embedded is not None:
            embedded.remove()


if __name__ == "__main__":
    main()
