"""Waiting for the worker without blocking the event loop."""

import time
from pathlib import Path

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
    return win.result


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
    return win.result
