"""Benchmarks: one script per figure, each printing its baseline ratio. Run with ``make bench``."""
