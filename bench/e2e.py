"""End to end: a visitor's ``message:send`` to the agent's ``message.created``.

Through everything: gateway (ack) -> mailbox + SAQ queue (Redis) -> worker (PostgreSQL transaction
with the outbox row) -> publish after commit -> Redis pub/sub -> gateway -> the agent's socket.
Visitors (5 messages/s each, so the per-visitor rate limit never bites) send at a steady total
rate; one agent receives every message; latency = receipt - send, per ``client_msg_id``, both
read from the load client's own clock. Rates 200 and 1,000 messages/s, 10 s each, 3 runs: median
and worst.

The load client is Node (``bench/e2e_client/e2e.mjs``, raw Socket.IO frames over npm ``ws``,
installed into the git-ignored ``bench/e2e_client/node_modules``), cheap enough that it cannot be
what limits the figures. ``BENCH_E2E_CLIENT=python`` runs python-socketio clients in this process
instead; measured side by side on a quiet machine the two agree within a millisecond.

``BENCH_E2E_STAGES=1`` adds a run per rate that splits the latency into stages, from timestamps
the pipeline already leaves (no instrumentation; one machine, one wall clock):

- ack       : send -> the gateway's ack (check, mailbox append, enqueue)
- queued    : ack -> the worker's transaction starts (``message.created_at`` is PostgreSQL's
  ``now()``, the transaction's start): SAQ dequeue, job start, mailbox read
- stored    : transaction start -> the envelope reaches a Redis subscriber (statements, commit,
  publish); a subscriber in this process stands in for the gateway's
- fan-out   : Redis subscriber -> the agent's socket (gateway: decode, audience, uWS publish; client)

Each rate also prints the CPU the pipeline spent per 1,000 messages over its measured runs, by
process (gateway and worker from ``/proc``, Redis from each server's ``INFO cpu``, a cluster's
every node and the queue's server included, the embedded PostgreSQL's postmaster and backends):
a figure that a noisy machine disturbs far less than latency.

``python -m bench e2e``. Environment: ``BENCH_E2E_RATES`` (default ``200,1000``),
``BENCH_E2E_SECONDS`` (default 10).
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
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import percentile  # noqa: E402
from bench.gateway import PYTHON, Bench, free_port, node_packages, stop  # noqa: E402

CLIENT = ROOT / "bench" / "e2e_client"
SECONDS = float(os.environ.get("BENCH_E2E_SECONDS", "10"))
PER_VISITOR = 5
RUNS = 3


def visitor_auth_file(bench: Bench, rate: int) -> Path:
    """Fresh visitors for every run (their first message creates their conversation, as in life)."""
    from server.accounts.tokens import visitor_token

    secret = bench.env["SECRET_KEY"]
    run = uuid.uuid4().hex[:6]
    path = bench.work / f"visitors-{run}.jsonl"
    count = max(1, rate // PER_VISITOR)
    lines = (
        json.dumps({"token": visitor_token(bench.project_id, f"v_{run}_{index}", secret)[0]})
        for index in range(count)
    )
    path.write_text("\n".join(lines) + "\n")
    return path


def run_node(
    bench: Bench, url: str, rate: int, trace: Path | None = None, seconds: float = SECONDS
) -> dict[str, float]:
    command = [
        "node",
        str(CLIENT / "e2e.mjs"),
        f"{url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket",
        str(visitor_auth_file(bench, rate)),
        bench.agent_auth,
        str(rate),
        str(seconds),
    ]
    if trace is not None:
        command.append(str(trace))
    done = subprocess.run(command, cwd=CLIENT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"load client failed: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def run_python(bench: Bench, url: str, rate: int) -> dict[str, float]:
    """The same workload with python-socketio clients in this process (for comparison)."""
    import socketio

    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    agent = socketio.AsyncClient(reconnection=False)
    total = int(rate * SECONDS)

    async def on_message(event: dict[str, Any]) -> None:
        started = sent.pop(str(event["data"].get("client_msg_id")), None)
        if started is not None:
            latencies.append((time.perf_counter() - started) * 1000)
            if len(latencies) >= total:
                done.set()

    agent.on("message.created", on_message, namespace="/agent")
    await agent.connect(
        url, namespaces=["/agent"], auth=json.loads(bench.agent_auth), transports=["websocket"]
    )
    visitors = []
    for line in visitor_auth_file(bench, rate).read_text().splitlines():
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, namespaces=["/visitor"], auth=json.loads(line), transports=["websocket"])
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
        await visitors[n % len(visitors)].emit(
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


def stages(bench: Bench, url: str, rate: int) -> None:
    """One traced run: where the time goes, per stage (p50 / p99 ms)."""
    from server.outbox.envelope import decode, project_channel

    published: dict[str, float] = {}
    redis, pubsub, read = _subscriber(bench.env["REDIS_URL"], project_channel(bench.project_id))
    stopping = threading.Event()

    def listen() -> None:
        while not stopping.is_set():
            message = read(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                at = time.time() * 1000
                envelope = decode(message["data"])
                if envelope.type == "message.created":
                    published.setdefault(str(envelope.data["client_msg_id"]), at)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    trace = bench.work / f"trace-{rate}.csv"
    try:
        result = run_node(bench, url, rate, trace)
    finally:
        stopping.set()
        listener.join()
        pubsub.close()
        redis.close()
    started = asyncio.run(_transaction_starts(bench.env["DATABASE_URL"], bench.project_id))
    rows: dict[str, list[float]] = {"ack": [], "queued": [], "stored": [], "fan-out": [], "total": []}
    for line in trace.read_text().splitlines():
        client_msg_id, sent, acked, received = line.split(",")
        if not (acked and received and client_msg_id in published and client_msg_id in started):
            continue
        begun = started[client_msg_id]
        rows["ack"].append(float(acked) - float(sent))
        rows["queued"].append(begun - float(acked))
        rows["stored"].append(published[client_msg_id] - begun)
        rows["fan-out"].append(float(received) - published[client_msg_id])
        rows["total"].append(float(received) - float(sent))
    print(f"  stages at {rate}/s (one traced run, {len(rows['total'])} messages; p50 / p99 ms):", flush=True)
    for name, values in rows.items():
        print(f"    {name:8} {percentile(values, 0.5):6.1f} / {percentile(values, 0.99):6.1f}", flush=True)
    print(f"    (that run: p50 {result['p50']:.1f} ms p99 {result['p99']:.1f} ms)", flush=True)


def _subscriber(url: str, channel: str) -> tuple[Any, Any, Any]:
    """A synchronous subscriber to ``channel``: (client, pubsub, its read function).

    On a cluster the relay publishes with ``SPUBLISH``, so this subscribes with ``SSUBSCRIBE`` on
    the primary that owns the channel's slot, as the gateway does.
    """
    from urllib.parse import urlsplit

    from redis import Redis
    from redis.cluster import ClusterNode, RedisCluster

    from server.redis_client import CLUSTER_SCHEME, _addresses

    parts = urlsplit(url)
    if parts.scheme == CLUSTER_SCHEME:
        cluster = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in _addresses(parts.netloc)])
        node = cluster.get_node_from_key(channel)
        client = Redis(host=node.host, port=node.port)
        cluster.close()
        pubsub = client.pubsub()
        pubsub.ssubscribe(channel)
        return client, pubsub, pubsub.get_sharded_message
    client = Redis.from_url(url)
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    return client, pubsub, pubsub.get_message


def _process_cpu(pid: int) -> float:
    """CPU seconds a process and its reaped children used (``/proc``; 0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu(pg_dir: Path) -> float:
    """CPU seconds of the embedded PostgreSQL: the postmaster, its reaped and its live backends."""
    try:
        postmaster = int((pg_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = _process_cpu(postmaster)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    total += _process_cpu(int(entry.name))
    return total


def _redis_cpu(urls: list[str]) -> float:
    """CPU seconds the Redis servers behind ``urls`` report (``INFO cpu``; a cluster's every node)."""
    from urllib.parse import urlsplit

    from redis import Redis
    from redis.cluster import ClusterNode, RedisCluster

    from server.redis_client import CLUSTER_SCHEME, _addresses

    total = 0.0
    seen: set[tuple[str, int]] = set()
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme == CLUSTER_SCHEME:
            cluster = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in _addresses(parts.netloc)])
            nodes = [(node.host, node.port) for node in cluster.get_nodes()]
            cluster.close()
        else:
            nodes = [(parts.hostname or "127.0.0.1", parts.port or 6379)]
        for host, port in nodes:
            if (host, port) in seen:
                continue
            seen.add((host, port))
            with Redis(host=host, port=port) as client:
                info = client.info("cpu")
                total += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    return total


class CpuMeter:
    """CPU seconds of every process of the pipeline, between two readings."""

    def __init__(
        self, bench: Bench, gateway: subprocess.Popen[bytes], worker: subprocess.Popen[bytes]
    ) -> None:
        self.read = lambda: {
            "gateway": _process_cpu(gateway.pid),
            "worker": _process_cpu(worker.pid),
            "redis": _redis_cpu(
                [bench.env["REDIS_URL"], bench.env.get("QUEUE_REDIS_URL", bench.env["REDIS_URL"])]
            ),
            "postgres": _postgres_cpu(bench.embedded.pg_dir),
        }

    def per_thousand(self, before: dict[str, float], messages: int) -> str:
        after = self.read()
        used = {name: (after[name] - before[name]) * 1000 / messages * 1000 for name in after}
        used["total"] = sum(used.values())
        return ", ".join(f"{name} {ms:.0f} ms" for name, ms in used.items())


async def _transaction_starts(database_url: str, project_id: int) -> dict[str, float]:
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT client_msg_id::text, extract(epoch FROM created_at) * 1000 AS at FROM message "
            "WHERE project = $1",
            project_id,
        )
    finally:
        await connection.close()
    return {row["client_msg_id"]: float(row["at"]) for row in rows}


def main() -> int:
    rates = [int(n) for n in os.environ.get("BENCH_E2E_RATES", "200,1000").split(",") if n]
    client = os.environ.get("BENCH_E2E_CLIENT", "node")
    if client == "node" and not node_packages(
        CLIENT, "bench/e2e.py's load client (or BENCH_E2E_CLIENT=python)"
    ):
        return 0
    bench = Bench(Path(tempfile.mkdtemp(prefix="parley-e2e-")))
    print(
        f"end to end: visitor message:send -> agent message.created, {SECONDS:g} s per run, {RUNS} runs,"
        f" {client} load client",
        flush=True,
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
        url = f"http://127.0.0.1:{port}"
        try:
            meter = CpuMeter(bench, gateway, worker)
            for rate in rates:
                if client == "node":
                    run_node(bench, url, min(rate, 100), seconds=2)  # warm-up: caches, JIT
                    before = meter.read()
                    runs = [run_node(bench, url, rate) for _ in range(RUNS)]
                else:
                    before = meter.read()
                    runs = [asyncio.run(run_python(bench, url, rate)) for _ in range(RUNS)]
                cpu = meter.per_thousand(before, RUNS * round(rate * SECONDS))
                p50s, p99s = [r["p50"] for r in runs], [r["p99"] for r in runs]
                print(
                    f"  {rate}/s (achieved {statistics.median(r['rate'] for r in runs):.0f}/s): "
                    f"p50 median {statistics.median(p50s):.1f} ms worst {max(p50s):.1f} ms; "
                    f"p99 median {statistics.median(p99s):.1f} ms worst {max(p99s):.1f} ms; "
                    f"lost {max(r['lost'] for r in runs):.0f}, refused {max(r['refused'] for r in runs):.0f}",
                    flush=True,
                )
                print(f"  {rate}/s CPU per 1,000 messages: {cpu}", flush=True)
                if os.environ.get("BENCH_E2E_STAGES") and client == "node":
                    stages(bench, url, rate)
        finally:
            stop(worker)
            stop(gateway)
    finally:
        bench.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
