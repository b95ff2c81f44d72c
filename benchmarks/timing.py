"""Shared timing for the benchmarks that compare two or more calls on this shared machine."""

from __future__ import annotations

import statistics
import time


def interleaved(fns, repeats: int) -> list[float]:
    """Median time of each function, the calls alternating (the machine's load hits all)."""
    for fn in fns:
        fn()  # warm-up (tracing, first allocation)
    samples = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples, strict=True):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [statistics.median(s) for s in samples]


def timed(fn, repeats: int = 7) -> float:
    """Median milliseconds of `fn()` over `repeats` calls, after one warm-up call: `interleaved`
    of it alone."""
    return interleaved([fn], repeats)[0] * 1e3
