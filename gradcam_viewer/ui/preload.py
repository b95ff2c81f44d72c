"""Import TensorFlow, Keras and the engine on a thread of their own as the GUI starts.

The import takes seconds; started before the window is built it overlaps Qt's start-up. Any
other thread must `wait()` before importing TensorFlow: two threads importing TensorFlow's
cyclic package at once make Python's import locks report a deadlock. The GUI thread never
imports TensorFlow itself. A failed import is only logged here: the worker imports again and
reports why the model cannot load.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

# perf_counter() at "started" and "finished" (read by the benchmark and the tests)
timings: dict[str, float] = {}
_lock = threading.Lock()
_thread: threading.Thread | None = None


def start() -> None:
    """Start the import once per process (later calls do nothing)."""
    global _thread
    with _lock:
        if _thread is not None:
            return
        # daemon: closing the window at once need not wait for the import to end
        _thread = threading.Thread(target=_import, name="gradcam-import", daemon=True)
        _thread.start()


def wait() -> None:
    """Return once the import started by `start` (if any) has ended."""
    thread = _thread
    if thread is not None and thread is not threading.current_thread():
        thread.join()


def _import() -> None:
    timings["started"] = time.perf_counter()
    try:
        import gradcam_viewer.cam.explainer
        import gradcam_viewer.models
        import gradcam_viewer.models.chexnet
        import gradcam_viewer.trust.ood  # noqa: F401
    except BaseException:
        log.warning("background import failed", exc_info=True)
    timings["finished"] = time.perf_counter()
