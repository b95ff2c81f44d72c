"""Which deflate calls release the GIL (why export's PNG writer threads overlap).

A thread spins a Python counter; the caller reads it just before and just after each call, and
the counter's rate during the call is printed as a ratio of its rate while the caller sleeps
(GIL free). A call that holds the GIL gives ~0 (math.factorial is the control); one that
releases it gives ~0.5-1 (about 0.5 when the two threads share one free core).
Run: .venv/bin/python benchmarks/bench_gil.py
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import zlib
from collections.abc import Callable

import isal
import numpy as np
from isal import isal_zlib

_count = [0]
_stop = threading.Event()
_spinner: threading.Thread | None = None


def _spin() -> None:
    while not _stop.is_set():
        _count[0] += 1


def _rate(call: Callable[[], object]) -> tuple[float, float]:
    before, t0 = _count[0], time.perf_counter()
    call()
    seconds = time.perf_counter() - t0
    return (_count[0] - before) / seconds, seconds


def report(name: str, call: Callable[[], object]) -> None:
    """Print how much the spinning counter ran during `call` (bench_reading's GIL check too)."""
    global _spinner
    if _spinner is None:
        _spinner = threading.Thread(target=_spin, daemon=True)
        _spinner.start()
        time.sleep(0.05)
    ratios = []
    for _ in range(3):
        busy, seconds = _rate(call)
        idle, _ = _rate(lambda s=seconds: time.sleep(s))
        ratios.append(busy / idle)
    print(f"{name:40s} {seconds * 1000:7.1f} ms   counter rate / idle rate: "
          + " ".join(f"{r:4.2f}" for r in ratios))


def _stream(data: bytes) -> bytes:
    deflate = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 15, 9)  # as export.encode_png_fast
    return deflate.compress(data) + deflate.flush()


def main() -> None:
    big = np.random.default_rng(0).integers(0, 16, 30_000_000, dtype=np.uint8).tobytes()
    rows = big[:1024 * (3 * 1024 + 1)]  # a 1024x1024 RGB overlay's filtered rows, ~3 MB
    report("30 MB isal_zlib.compress", lambda: isal_zlib.compress(big, 1))
    report("30 MB isal_zlib.compressobj", lambda: _stream(big))
    report("30 MB zlib.compress", lambda: zlib.compress(big, 1))
    report("3 MB isal_zlib.compress x20", lambda: [isal_zlib.compress(rows, 1) for _ in range(20)])
    report("3 MB isal_zlib.compressobj x20", lambda: [_stream(rows) for _ in range(20)])
    report("math.factorial(150000) (holds the GIL)", lambda: math.factorial(150000))
    _stop.set()
    print(f"isal {isal.__version__}, Python {sys.version.split()[0]}, "
          f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
