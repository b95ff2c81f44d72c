"""Work that waits on the network or the disk (PACS, DICOM objects) on a Python thread, with
its answer delivered on the GUI thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from PySide6.QtCore import QObject, Signal

from gradcam_viewer.ui.status import Messages

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Relay(QObject):
    """Tells the GUI thread that a network thread has finished."""

    done = Signal()


class NetworkJobs:
    """`run(work, then)`: `work()` on a thread of its own, `then(result)` on the GUI thread; a
    failure becomes a message (without this the window would wait on "Sending..." forever)."""

    def __init__(self, parent: QObject, messages: Messages) -> None:
        self._parent, self._messages = parent, messages
        self.relays: set[_Relay] = set()  # each kept alive until it has delivered

    def run(self, work: Callable[[], T], then: Callable[[T], object]) -> None:
        relay = _Relay(self._parent)
        self.relays.add(relay)
        answer: list[T] = []  # written by the thread before it signals, read after
        problem: list[str] = []

        def deliver() -> None:
            self.relays.discard(relay)
            relay.deleteLater()
            if answer:
                then(answer[0])
            else:
                self._messages.error(f"The PACS operation failed: {problem[0]}.")

        def run() -> None:
            try:
                answer.append(work())
            except Exception as exc:  # noqa: BLE001 - shown to the user, not a traceback
                log.warning("PACS operation failed: %s", type(exc).__name__)
                problem.append(str(exc) or type(exc).__name__)
            relay.done.emit()

        relay.done.connect(deliver)
        threading.Thread(target=run, daemon=True, name="gradcam-pacs").start()
