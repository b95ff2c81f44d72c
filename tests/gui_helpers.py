"""Waiting for the worker without blocking the event loop."""

import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def shows(win, path, method: str | None = None) -> bool:
    """The window shows `path` with the explanation it asked for last, and waits for nothing."""
    s = win.session
    return (s.image is not None and Path(s.image.path) == Path(path) and s.result is not None
            and s.belongs(s.result) and not s.busy
            and (method is None or s.result.method == method))


def wait_shown(qtbot, win, path, method: str | None = None, timeout: float = 120.0):
    """Wait (pytest-qt) until `path` is shown with its explanation, and drawn."""
    qtbot.waitUntil(lambda: shows(win, path, method) and win.drawn(),
                    timeout=int(timeout * 1000))
    return win.session.result


def wait_until(predicate, timeout: float = 120.0, step_ms: int = 10) -> None:
    """For tests without qtbot: process events until `predicate()` holds."""
    app = QApplication.instance()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        app.processEvents()
        time.sleep(step_ms / 1000.0)


def wait_result(win, path, timeout: float = 120.0):
    """`wait_shown` for tests without qtbot."""
    wait_until(lambda: shows(win, path) and win.drawn(), timeout)
    return win.session.result


class Heartbeat:
    """A 10 ms timer on the GUI thread that records, between two ticks, the wall-clock gap and
    the GUI thread's own CPU time (which another program on a busy machine cannot inflate)."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.cpu_gaps: list[float] = []
        self.timer = QTimer()
        self.timer.timeout.connect(self._beat)
        self.mark()

    def mark(self) -> float:
        """Start measuring from now (time spent outside the event loop is not a gap)."""
        self._last = (time.perf_counter(), time.thread_time())
        return self._last[0]

    def _beat(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.gaps.append(now - self._last[0])
        self.cpu_gaps.append(cpu - self._last[1])
        self._last = (now, cpu)

    def start(self, interval_ms: int = 10) -> None:
        self.timer.start(interval_ms)

    def stop(self) -> None:
        self.timer.stop()

    def assert_responsive(self, worked: float, min_ticks: int = 11,
                          min_work: float = 0.2) -> None:
        """Over `worked` seconds of work: no 100 ms of GUI-thread CPU, no 250 ms wall gap.
        `min_ticks`/`min_work`: the measurement saw enough to mean something."""
        assert len(self.gaps) >= min_ticks and worked > min_work, (len(self.gaps), worked)
        assert max(self.cpu_gaps) < 0.1, f"GUI thread busy for {max(self.cpu_gaps) * 1000:.0f} ms"
        assert max(self.gaps) < 0.25, f"GUI blocked for {max(self.gaps) * 1000:.0f} ms"
