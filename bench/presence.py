"""Presence at scale: what one realtime node's sockets cost Redis, one server beside a cluster.

The figures ``docs/scaling.md``'s plan for 1,000,000 sockets leans on: the real
:class:`server.realtime.presence.Presence` (no gateway, no sockets: its entries are given
directly, as the gateway gives its open sockets) on a fresh single Valkey and a fresh 3-primary
Valkey cluster, for a node holding N visitor sockets spread over 100 projects:

- join  : registering N sockets (the batches a connection storm is written in), entries/s
- beat  : one heartbeat refreshing all N (what every node does every ``REALTIME_HEARTBEAT_MS``)
- storm : the node dies (its entries expire) and another node's sweeper re-counts every subject:
  sweeps needed, seconds, and ``presence.changed`` events published (before the coalescing of
  issue #15 it was one per visitor: N)

Median and worst of 3. ``python -m bench presence``; ``BENCH_PRESENCE_SOCKETS`` (default
``10000,50000``).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import single_valkey as single  # noqa: E402
from bench import valkey_cluster as cluster  # noqa: E402
from server.realtime.presence import JOIN_BATCH, Entry, Presence, Subject  # noqa: E402
from server.redis_client import make_redis  # noqa: E402
from server.settings import RedisSettings  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_PRESENCE_SOCKETS", "10000,50000").split(",") if n]
PROJECTS = 100
RUNS = 3


async def measure(url: str, sockets: int, run: int) -> dict[str, float]:
    redis = make_redis(RedisSettings(url=url, max_connections=16))
    published: list[Any] = []

    async def publish(envelope: Any) -> None:
        published.append(envelope)

    entries: list[Entry] = [
        (Subject(index % PROJECTS + 1, "visitor", f"v_{run}_{index}"), index) for index in range(sockets)
    ]
    dying = Presence(redis, node_id=f"dying{run}", grace_ms=0, ttl_ms=60_000, publish=publish)
    dying.entries = lambda: iter(entries)
    try:
        started = time.perf_counter()
        for start in range(0, sockets, JOIN_BATCH):
            await dying._register(entries[start : start + JOIN_BATCH])
        join = time.perf_counter() - started
        beats = []
        for _ in range(3):
            started = time.perf_counter()
            await dying.heartbeat()
            beats.append(time.perf_counter() - started)
        # The node dies: its entries' expiry passes (a 1 ms TTL written by its last heartbeat).
        expiring = Presence(redis, node_id=f"dying{run}", grace_ms=0, ttl_ms=1, publish=publish)
        expiring.entries = lambda: iter(entries)
        await expiring.heartbeat()
        await asyncio.sleep(0.01)
        published.clear()
        survivor = Presence(redis, node_id=f"survivor{run}", grace_ms=0, ttl_ms=60_000, publish=publish)
        started = time.perf_counter()
        sweeps = 0
        while sum(len(e.data["changes"]) for e in published) < sockets and sweeps < 10_000:
            await survivor.sweep()
            sweeps += 1
        storm = time.perf_counter() - started
        return {
            "join_per_s": sockets / join,
            "beat_ms": statistics.median(beats) * 1000,
            "storm_s": storm,
            "sweeps": sweeps,
            "events": len(published),
            "offline": sum(len(e.data["changes"]) for e in published),
        }
    finally:
        await redis.aclose()


def main() -> int:
    print(f"presence: N visitor sockets of one node over {PROJECTS} projects, {RUNS} runs each", flush=True)
    for name, topology in (("single", single), ("cluster", cluster)):
        with topology() as url:
            for sockets in SIZES:
                runs = [asyncio.run(measure(url, sockets, run)) for run in range(RUNS)]

                def figure(key: str, higher_is_better: bool, runs: list[dict[str, float]] = runs) -> str:
                    values = [r[key] for r in runs]
                    worst = min(values) if higher_is_better else max(values)
                    return f"{statistics.median(values):,.1f} (worst {worst:,.1f})"

                print(
                    f"  {name:7} {sockets:>6} sockets: join {figure('join_per_s', True)} entries/s;"
                    f" heartbeat {figure('beat_ms', False)} ms;"
                    f" storm {figure('storm_s', False)} s in {figure('sweeps', False)} sweeps,"
                    f" {figure('events', False)} presence.changed events for"
                    f" {figure('offline', True)} offline visitors (one per visitor before coalescing)",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
