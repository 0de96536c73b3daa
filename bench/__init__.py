"""Benchmarks: one script per figure, each printing its baseline ratio. Run with ``make bench``.

The helpers here are the scripts' shared arithmetic, so every figure means the same thing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``; NaN for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


@contextmanager
def single_valkey() -> Iterator[str]:
    """A fresh single Valkey on loopback (no persistence) for one side of a topology comparison."""
    from tests.redis_servers import ValkeyNode, _free_port

    root = Path(tempfile.mkdtemp(prefix="parley-bench-single-"))
    node = ValkeyNode(_free_port(), root / "single", ["--save", "", "--appendonly", "no"])
    node.start()
    try:
        yield f"redis://127.0.0.1:{node.port}/0"
    finally:
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def valkey_cluster(primaries: int = 3) -> Iterator[str]:
    """A fresh Valkey cluster of ``primaries`` primaries; yields its ``redis+cluster://`` URL."""
    from tests.redis_servers import ValkeyCluster

    started = ValkeyCluster(primaries=primaries).start()
    try:
        yield started.url
    finally:
        started.stop()
