"""Benchmarks: one script per figure, each printing its baseline ratio. Run with ``make bench``.

The helpers here are the scripts' shared arithmetic, so every figure means the same thing.
"""

from __future__ import annotations


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``; NaN for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")
