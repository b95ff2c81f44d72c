"""The live score off the GUI thread: at a 14 MP image's full size it takes a few hundred
milliseconds, which the window must not freeze for while the user drags the threshold or a
mark (benchmarks/bench_marks.py).

One Python thread of its own (numpy releases the GIL for the large array work) computes the
newest request only: a request made while another is computed replaces the one waiting, so
dragging never queues up work. The answer comes back on the GUI thread by a signal with the
request's token; the caller keeps the newest.
"""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, Signal, SignalInstance

from gradcam_viewer.marks.live import LiveScore, LiveScorer, ScoreInput

log = logging.getLogger(__name__)


class _Waiting:
    """The request waiting for the thread (the newest), and whether to stop; shared with the
    thread, which must not keep the Qt object alive."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.request: tuple[int, ScoreInput] | None = None
        self.closed = False

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()


class ScoreThread(QObject):
    ready = Signal(int, object)  # token, LiveScore

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._waiting = _Waiting()
        self._thread: threading.Thread | None = None
        self.destroyed.connect(self._waiting.close)

    def submit(self, token: int, request: ScoreInput) -> None:
        waiting = self._waiting
        with waiting.cond:
            waiting.request = (token, request)
            waiting.cond.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=_run, args=(waiting, self.ready),
                                            daemon=True, name="gradcam-live-score")
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread: it ends after the score it is computing (a few hundred ms at
        most); waited for up to `timeout` seconds, so that no thread outlives the window."""
        self._waiting.close()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the live score thread did not stop within %.0f s", timeout)


def _run(waiting: _Waiting, ready: SignalInstance) -> None:
    scorer = LiveScorer()
    while True:
        with waiting.cond:
            while waiting.request is None and not waiting.closed:
                waiting.cond.wait()
            if waiting.closed:
                return
            assert waiting.request is not None
            token, request = waiting.request
            waiting.request = None
        try:
            score = scorer.score(request)
        except Exception:  # no score shown; the details in the log
            log.exception("the live score could not be computed")
            score = LiveScore()
        try:
            ready.emit(token, score)
        except RuntimeError:  # the window is gone
            return
