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


def wait_until(app, done, timeout: float, what: str, poll: float = 0.002) -> None:
    """Process Qt events until `done()` (the window's replies come through the event loop);
    TimeoutError naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError(f"the viewer did not {what} in time")
        app.processEvents()
        time.sleep(poll)
