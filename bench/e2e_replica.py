"""The cost of ``REDIS_ACK_REPLICAS=1`` on the end-to-end benchmark: one primary with one replica.

Runs ``bench/e2e.py`` twice over the same primary (valkey-server with a replica attached, from
``tests/redis_servers.py``): acknowledging once the primary holds a message, then only once the
replica does too (``WAIT 1``). ``python -m bench e2e_replica``; the e2e environment applies
(``BENCH_E2E_RATES``, ``BENCH_E2E_SECONDS``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.redis_servers import ValkeyNode, _free_port, _wait  # noqa: E402


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="parley-bench-replica-"))
    primary = ValkeyNode(_free_port(), root / "primary", ["--save", "", "--appendonly", "no"])
    primary.start()
    replica = ValkeyNode(
        _free_port(),
        root / "replica",
        ["--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", str(primary.port)],
    )
    replica.start()
    _wait(
        lambda: replica.client().info("replication").get("master_link_status") == "up",
        timeout=20,
        what="the replica to sync",
    )
    try:
        for acks in ("0", "1"):
            print(f"\n=== REDIS_ACK_REPLICAS={acks} (primary with one replica, over TCP)", flush=True)
            url = f"redis://127.0.0.1:{primary.port}/0"
            env = {**os.environ, "BENCH_REDIS_URL": url, "REDIS_ACK_REPLICAS": acks}
            subprocess.run([sys.executable, "-m", "bench", "e2e"], env=env, cwd=ROOT, check=True)
            primary.client().flushall()
    finally:
        replica.stop()
        primary.stop()


if __name__ == "__main__":
    main()
