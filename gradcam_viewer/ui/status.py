"""The status bar, and the messages the user is shown.

`Messages` is what other parts of the window are handed to tell the user something: a line in
the status bar, or a non-blocking message box (`dialogs.message`). It keeps the last error
(tests and `--self-test` read it).
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QLabel, QMessageBox, QProgressBar, QStatusBar, QWidget

from gradcam_viewer.cam.methods import METHOD_TITLES
from gradcam_viewer.session.results import ExplainResult, ModelInfo
from gradcam_viewer.ui import dialogs

log = logging.getLogger(__name__)
TITLE = "Grad-CAM Viewer"


class StatusPanel:
    """Model, time of the last explanation, what the worker does, busy, window/level,
    position in the files and zoom."""

    def __init__(self, bar: QStatusBar) -> None:
        self.model = QLabel("Model: loading...")
        self.time = QLabel("")
        self.worker = QLabel("Starting")
        self.wl = QLabel("")
        self.pos = QLabel("")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setVisible(False)
        for w in (self.model, self.time, self.wl, self.pos):
            bar.addPermanentWidget(w)
        bar.addWidget(self.worker)
        bar.addPermanentWidget(self.busy)

    def show_model(self, info: ModelInfo | None) -> None:
        self.model.setText(f"Model: {info.name}" if info is not None else "Model: none")

    def model_loading(self) -> None:
        self.model.setText("Model: loading...")

    def show_time(self, result: ExplainResult | None) -> None:
        if result is None:
            self.time.setText("")
            return
        self.time.setText(f"{METHOD_TITLES.get(result.method, result.method)}: "
                          f"{result.seconds * 1000:.0f} ms")

    def show_place(self, window_text: str, position: str, zoom: float) -> None:
        """Window/level, "3 / 12" in the files opened together, and the zoom."""
        self.wl.setText(window_text)
        self.pos.setText(" ".join(x for x in (position, f"zoom {zoom * 100:.0f}%") if x))


class Messages:
    """A line in the status bar, or a message box that does not block the event loop."""

    def __init__(self, parent: QWidget, line: QLabel) -> None:
        self._parent, self._line = parent, line
        self.last_error = ""

    def status(self, text: str) -> None:
        self._line.setText(text)

    def error(self, message: str) -> None:
        self.last_error = message
        log.info("shown to user: %s", message.splitlines()[0][:200])
        self._line.setText(message.splitlines()[0][:120])
        dialogs.message(self._parent, TITLE, message, QMessageBox.Icon.Warning)

    def notice(self, message: str) -> None:
        self._line.setText(message[:120])
        dialogs.message(self._parent, TITLE, message, QMessageBox.Icon.Information)
