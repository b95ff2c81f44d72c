"""What the window is asked to open from outside, carried out: its own command line, what
another `gradcam-viewer` handed over (ui/single_instance.py), and macOS's open-file and
open-link events.

The order and the questions are the Qt-free `LaunchQueue`'s (launch/queue.py); this part brings
the window to the front, asks the user about links (one question, naming the node and the
study), opens files, and hands studies to the `StudyOpener` the window provides (it retrieves
the study from the node and opens it)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QMessageBox

from gradcam_viewer.cli.common import CommandError
from gradcam_viewer.launch.handover import Handover
from gradcam_viewer.launch.links import LinkError, is_link, parse_link
from gradcam_viewer.launch.queue import LaunchQueue, Steps
from gradcam_viewer.launch.requests import (
    BadLink,
    LaunchRequest,
    OpenFiles,
    OpenStudy,
    StudyRequest,
)
from gradcam_viewer.ui.status import TITLE

if TYPE_CHECKING:
    from gradcam_viewer.ui.main_window import MainWindow

log = logging.getLogger(__name__)

StudyOpener = Callable[[StudyRequest], None]
"""Retrieves a study from its node and opens it in the window, reporting its progress and
problems to the user: `MainWindow.open_study` (ui/pacs_open.py)."""


def node_problem(study: StudyRequest) -> str:
    """Why the study cannot come from the node it names ("" when it can): the node must be
    configured, by that name, for query/retrieve."""
    from gradcam_viewer.pacs import NodeError, load_nodes
    from gradcam_viewer.pacs.nodes import retrieve_node

    try:
        retrieve_node(study.node, load_nodes())
    except NodeError as exc:
        return str(exc)
    return ""


class Launcher(QObject):
    def __init__(self, win: MainWindow, open_study: StudyOpener | None = None) -> None:
        super().__init__(win)
        self.win, self.open_study = win, open_study
        self.queue = LaunchQueue()
        self.question: QMessageBox | None = None  # the open confirmation, if any

    # ------------------------------------------------------------------ what comes in ----
    def receive(self, handover: Handover) -> None:
        """Arguments another `gradcam-viewer` process handed over."""
        from gradcam_viewer.cli.gui import requests_from

        self.to_front()
        try:
            requests = requests_from(handover)
        except CommandError as exc:
            log.warning("handed-over arguments refused: %s", exc)
            self.win.messages.error(f"Another gradcam-viewer asked this window for something it "
                                    f"cannot do: {exc}.")
            return
        for request in requests:
            self.submit(request)

    def submit(self, request: LaunchRequest) -> None:
        self._carry_out(self.queue.push(request))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """macOS sends files and links opened in the Finder or a browser to the running
        application as FileOpen events, not as arguments."""
        if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
            url = event.url()
            text = bytes(url.toEncoded().data()).decode("ascii")  # as sent: %-escapes kept
            self.to_front()
            if is_link(text):
                try:
                    self.submit(OpenStudy(parse_link(text), confirm=True))
                except LinkError as exc:
                    self.submit(BadLink(str(exc)))
            elif url.isLocalFile():
                self.submit(OpenFiles((Path(url.toLocalFile()),)))
            return True
        return super().eventFilter(watched, event)

    def to_front(self) -> None:
        win = self.win
        win.setWindowState((win.windowState() & ~Qt.WindowState.WindowMinimized)
                           | Qt.WindowState.WindowActive)
        win.show()
        win.raise_()
        win.activateWindow()

    # ------------------------------------------------------------------ carrying out ----
    def _carry_out(self, steps: Steps) -> None:
        for request in steps.run:
            self._do(request)
        if steps.ask is not None:
            self._ask(steps.ask)

    def _do(self, request: LaunchRequest) -> None:
        if isinstance(request, BadLink):
            log.info("link refused: %s", request.reason)
            self.win.messages.error(f"This gradcam-viewer link was not opened: "
                                    f"{request.reason}.")
        elif isinstance(request, OpenFiles):
            if request.model is not None:
                model = request.model
                reference = str(model.reference_images or "")
                self.win.load_model(model.kind, str(model.path), reference)
            if request.paths:
                log.info("opening %s", ", ".join(p.name for p in request.paths))
                self.win.open_paths(list(request.paths))
        elif self.open_study is None:
            self.win.messages.error("This window cannot retrieve studies from a PACS node.")
        else:
            log.info("opening a study from a PACS node: %s", request.study.log_text())
            self.open_study(request.study)  # says itself what is wrong with the node

    def _ask(self, request: OpenStudy) -> None:
        """One question per link, naming the node and the study; nothing else is carried out
        until it is answered."""
        study = request.study
        problem = node_problem(study)
        if problem:  # asking would be in vain
            log.info("link not followed: %s", problem)
            self.win.messages.error(f"The study cannot be opened: {problem}.")
            self._carry_out(self.queue.answer(False))
            return
        box = QMessageBox(QMessageBox.Icon.Question, TITLE,
                          f"A gradcam-viewer link asks to retrieve {study.describe()} from the "
                          f"PACS node '{study.node}' and open it.", parent=self.win)
        box.setInformativeText("Open it only if you followed this link yourself, from your "
                               "worklist.")
        yes = box.addButton("Retrieve and open", QMessageBox.ButtonRole.AcceptRole)
        no = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(no)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _code: self._answered(box.clickedButton() is yes))
        self.question = box
        box.open()

    def _answered(self, yes: bool) -> None:
        self.question = None
        if not yes:
            log.info("link not followed: the user said no")
        self._carry_out(self.queue.answer(yes))
