"""Tracing compiled explain functions on a thread of their own, one at a time.

Tracing a deep model takes seconds of Python (and the GIL); the viewer explains eagerly
meanwhile and uses the compiled function once it is ready. The compiled function lives on its
`Explainer`, so a model switch cannot hand one model's function to another: a trace asked for
a model no longer wanted (`wanted(explainer)` is false when its turn comes) is skipped.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradcam_viewer.cam.explainer import Explainer

log = logging.getLogger(__name__)

STACK_BYTES = 64 * 1024 * 1024  # tracing a deep Keras graph recurses deeply


class BackgroundTracer:
    def __init__(self, wanted: Callable[[Explainer], bool]) -> None:
        self._wanted = wanted
        self._jobs: queue.Queue[tuple[Explainer, str] | None] = queue.Queue()
        self._asked: weakref.WeakKeyDictionary[Explainer, set[str]] = weakref.WeakKeyDictionary()
        self._thread: threading.Thread | None = None
        self.traced = 0  # traces completed (for tests and the benchmark)

    def request(self, explainer: Explainer, method: str) -> None:
        """Trace `explainer`'s `method` in the background unless it is done or asked for."""
        asked = self._asked.setdefault(explainer, set())
        if explainer.is_traced(method) or method in asked:
            return  # done, queued, or failed before (then it stays eager)
        asked.add(method)
        self._jobs.put((explainer, method))
        if self._thread is None:
            old = threading.stack_size(STACK_BYTES)
            try:
                self._thread = threading.Thread(target=self._run, name="gradcam-trace",
                                                daemon=True)
                self._thread.start()
            finally:
                threading.stack_size(old)

    def stop(self, timeout: float | None = None) -> None:
        """Finish the trace in progress (it cannot be interrupted), skip the rest, end."""
        if self._thread is None:
            return
        self._wanted = lambda _explainer: False
        self._jobs.put(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            explainer, method = job
            try:
                if self._wanted(explainer):
                    explainer.trace(method)
                    self.traced += 1
            except Exception:  # the model keeps explaining eagerly
                log.warning("tracing %s failed; explaining eagerly", method, exc_info=True)
            finally:
                del job, explainer  # a model switched away from is not kept alive here
                self._jobs.task_done()
