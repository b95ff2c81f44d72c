"""Waiting for the worker without blocking the event loop (pytest-qt's waitUntil)."""

from pathlib import Path


def shows(win, path, method: str | None = None) -> bool:
    """The window shows `path` with the explanation it asked for last, and waits for nothing."""
    s = win.session
    return (s.image is not None and Path(s.image.path) == Path(path) and s.result is not None
            and s.belongs(s.result) and not s.busy
            and (method is None or s.result.method == method))


def wait_result(qtbot, win, path, method: str | None = None, timeout: float = 120.0):
    """Wait until `path` is shown with its explanation, and drawn."""
    qtbot.waitUntil(lambda: shows(win, path, method) and win.drawn(),
                    timeout=int(timeout * 1000))
    return win.result
