"""Small timing helpers for the benchmarks: interleaved repeats and medians, so that a noisy,
shared machine affects the candidate and its baseline alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_ratio(
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    rounds: int = 5,
    repeats: int = 3,
) -> tuple[float, float, float]:
    """Median candidate time, median baseline time and their ratio, measured in alternation."""
    cand, base = [], []
    candidate(), baseline()
    for _ in range(rounds):
        cand.append(median_seconds(candidate, repeats, warmup=0))
        base.append(median_seconds(baseline, repeats, warmup=0))
    c, b = statistics.median(cand), statistics.median(base)
    return c, b, c / b
