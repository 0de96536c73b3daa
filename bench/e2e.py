"""End to end: a visitor's ``message:send`` to the agent's ``message.created``.

Through everything: gateway (ack) -> mailbox + SAQ queue (Redis) -> worker (PostgreSQL transaction
with the outbox row) -> outbox relay -> Redis pub/sub -> gateway -> the agent's socket. Visitors
(python-socketio clients, 5 messages/s each so the per-visitor rate limit never bites) send at a
steady total rate; one agent receives every message; latency = receipt - send, per
``client_msg_id``. Rates 200 and 1,000 messages/s, 10 s each, 3 runs: median and worst.

``python -m bench e2e``. Environment: ``BENCH_E2E_RATES`` (default ``200,1000``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
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

from bench.gateway import PYTHON, Bench, free_port, stop  # noqa: E402

SECONDS = 10
PER_VISITOR = 5


async def run_rate(bench: Bench, url: str, rate: int) -> dict[str, float]:
    import socketio

    from server.accounts.tokens import visitor_token

    secret = bench.env["SECRET_KEY"]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    agent = socketio.AsyncClient(reconnection=False)
    total = rate * SECONDS

    async def on_message(event: dict[str, Any]) -> None:
        started = sent.pop(str(event["data"].get("client_msg_id")), None)
        if started is not None:
            latencies.append((time.perf_counter() - started) * 1000)
            if len(latencies) >= total:
                done.set()

    agent.on("message.created", on_message, namespace="/agent")
    auth = json.loads(bench.agent_auth)
    await agent.connect(url, namespaces=["/agent"], auth=auth, transports=["websocket"])
    visitors = []
    count = max(1, rate // PER_VISITOR)
    run = uuid.uuid4().hex[:6]
    for index in range(count):
        client = socketio.AsyncClient(reconnection=False)
        token = visitor_token(bench.project_id, f"v_{run}_{index}", secret)[0]
        await client.connect(url, namespaces=["/visitor"], auth={"token": token}, transports=["websocket"])
        visitors.append(client)
    refused = 0

    def acked(answer: Any) -> None:
        nonlocal refused
        if not isinstance(answer, dict) or not answer.get("accepted"):
            refused += 1

    began = time.perf_counter()
    for n in range(total):
        await asyncio.sleep(max(0.0, began + n / rate - time.perf_counter()))
        client_msg_id = str(uuid.uuid4())
        sent[client_msg_id] = time.perf_counter()
        await visitors[n % count].emit(
            "message:send",
            {"body": f"m{n}", "client_msg_id": client_msg_id},
            namespace="/visitor",
            callback=acked,
        )
    sending = time.perf_counter() - began
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 30)
    for client in [*visitors, agent]:
        await client.disconnect()
    latencies.sort()
    received = len(latencies)
    return {
        "rate": total / sending,
        "p50": latencies[received // 2] if received else 0.0,
        "p99": latencies[min(received - 1, int(received * 0.99))] if received else 0.0,
        "lost": total - received,
        "refused": refused,
    }


def main() -> int:
    rates = [int(n) for n in os.environ.get("BENCH_E2E_RATES", "200,1000").split(",") if n]
    bench = Bench(Path(tempfile.mkdtemp(prefix="parley-e2e-")))
    print(
        f"end to end: visitor message:send -> agent message.created, {SECONDS} s per run, 3 runs", flush=True
    )
    try:
        bench.start()
        port = free_port()
        gateway = bench.gateway(port, "e2e-gateway.log")
        worker = subprocess.Popen(
            [PYTHON, "-m", "saq", "tasks.worker.settings"],
            env=bench.env,
            cwd=ROOT,
            stdout=(bench.work / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        time.sleep(3)
        try:
            for rate in rates:
                runs = [asyncio.run(run_rate(bench, f"http://127.0.0.1:{port}", rate)) for _ in range(3)]
                p50s, p99s = [r["p50"] for r in runs], [r["p99"] for r in runs]
                print(
                    f"  {rate}/s (achieved {statistics.median(r['rate'] for r in runs):.0f}/s): "
                    f"p50 median {statistics.median(p50s):.1f} ms worst {max(p50s):.1f} ms; "
                    f"p99 median {statistics.median(p99s):.1f} ms worst {max(p99s):.1f} ms; "
                    f"lost {max(r['lost'] for r in runs):.0f}, refused {max(r['refused'] for r in runs):.0f}",
                    flush=True,
                )
        finally:
            stop(worker)
            stop(gateway)
    finally:
        bench.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
