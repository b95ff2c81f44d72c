"""Waiting for the worker without blocking the event loop."""

import time

from PySide6.QtWidgets import QApplication


def wait_until(predicate, timeout: float = 120.0, step_ms: int = 10) -> None:
    app = QApplication.instance()
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        app.processEvents()
        time.sleep(step_ms / 1000.0)


def wait_result(win, path, timeout: float = 120.0):
    """Wait for the explanation of the newest request (not an older one of the same file)."""
    wait_until(lambda: win.result is not None and win.image is not None
               and win.shown_request == win.pending
               and str(win.image.path) == str(path)
               and win.result.key[0] == str(path), timeout)
    return win.result
