"""What ``REDIS_ACK_REPLICAS=1`` adds to the send path's Redis step: the mailbox append, with and without WAIT.

A valkey-server primary with one replica over TCP (``tests/redis_servers.py``); 2,000 single-message
appends (the send path's one Redis call per batch) with ``ReplicaAck(0)`` then ``ReplicaAck(1)``,
alternating, 3 rounds; append latency p50 and p99, median and worst of the rounds. The
end-to-end view of the same setting is ``bench/e2e_replica.py``. ``python -m bench replica_ack``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.chat.mailbox import Limit, Mailboxes, RateLimits, ReplicaAck  # noqa: E402
from server.chat.schemas import MessageKind, PendingMessage  # noqa: E402
from server.redis_client import make_redis  # noqa: E402
from server.settings import RedisSettings  # noqa: E402
from tests.redis_servers import ValkeyNode, _free_port, _wait  # noqa: E402

UNLIMITED = RateLimits(per_visitor=Limit(0, 1.0), per_agent=Limit(0, 1.0), per_project=Limit(0, 1.0))
APPENDS, ROUNDS = 2000, 3


async def measure(url: str, replicas: int) -> tuple[float, float]:
    redis = make_redis(RedisSettings(url=url, max_connections=8))
    mailboxes = Mailboxes(redis, replica_ack=ReplicaAck(replicas, 1000))
    latencies = []
    for index in range(APPENDS):
        message = PendingMessage(
            kind=MessageKind.VISITOR,
            project_id=1,
            client_msg_id=uuid.uuid4(),
            body="hello there",
            visitor_uid=f"v{index % 50}",
            accepted_at=time.time(),
        )
        started = time.perf_counter()
        await mailboxes.append([message], UNLIMITED)
        latencies.append((time.perf_counter() - started) * 1000)
    await redis.flushall()
    await redis.aclose()
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99)]


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="parley-bench-ack-"))
    primary = ValkeyNode(_free_port(), root / "primary", ["--save", "", "--appendonly", "no"])
    primary.start()
    replica = ValkeyNode(
        _free_port(),
        root / "replica",
        ["--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", str(primary.port)],
    )
    replica.start()
    try:
        _wait(
            lambda: replica.client().info("replication").get("master_link_status") == "up",
            timeout=20,
            what="the replica to sync",
        )
        url = f"redis://127.0.0.1:{primary.port}/0"
        results: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
        for _ in range(ROUNDS):
            for replicas in (0, 1):
                results[replicas].append(asyncio.run(measure(url, replicas)))
        print(
            f"mailbox append, {APPENDS} single-message appends x {ROUNDS} rounds, primary + 1 replica (TCP)"
        )
        for replicas, figures in results.items():
            p50s, p99s = [p50 for p50, _ in figures], [p99 for _, p99 in figures]
            print(
                f"  REDIS_ACK_REPLICAS={replicas}: p50 median {statistics.median(p50s):.3f} ms "
                f"worst {max(p50s):.3f} ms; p99 median {statistics.median(p99s):.3f} ms worst {max(p99s):.3f} ms"
            )
    finally:
        replica.stop()
        primary.stop()


if __name__ == "__main__":
    main()
