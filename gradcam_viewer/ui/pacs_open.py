"""File > Open from PACS and `MainWindow.open_study`: a study (or series) retrieved from a
configured node into the per-user cache, shown in the Studies panel as it arrives.

The retrieve runs on a Python thread (`gradcam_viewer.pacs`); what it reports comes to the
GUI thread through Qt signals and into a Qt-free `StudyRetrieval`, whose listings the window
hands to the Studies panel and the session. Progress and Cancel sit in the status bar."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QStatusBar,
    QWidget,
)

from gradcam_viewer.pacs.nodes import PacsNode
from gradcam_viewer.pacs.qr import Retriever, StudyRequest
from gradcam_viewer.pacs.retrieve import Progress, RetrieveReport
from gradcam_viewer.pacs.store import DEFAULT_CACHE_MB, RetrieveCache, Stored
from gradcam_viewer.session.retrieval import Entry, Listing, RetrieveState, StudyRetrieval
from gradcam_viewer.ui.status import Messages

if TYPE_CHECKING:
    from gradcam_viewer.ui.pacs_query import QueryDialog

log = logging.getLogger(__name__)
TICK_MS = 250  # how often a growing study is re-listed (the first image goes at once)


class RetrieveSettings:
    """The cache's settings, in the window's QSettings: its size limit, and whether retrieved
    studies are kept when the viewer closes."""

    def __init__(self, settings: QSettings) -> None:
        self._settings = settings

    @property
    def cache_mb(self) -> int:
        try:
            return max(0, int(str(self._settings.value("pacs/cache_mb", DEFAULT_CACHE_MB))))
        except ValueError:
            return DEFAULT_CACHE_MB

    @cache_mb.setter
    def cache_mb(self, value: int) -> None:
        self._settings.setValue("pacs/cache_mb", int(value))

    @property
    def keep(self) -> bool:
        return str(self._settings.value("pacs/keep_retrieved", "true")).lower() == "true"

    @keep.setter
    def keep(self, value: bool) -> None:
        self._settings.setValue("pacs/keep_retrieved", "true" if value else "false")

    def cache(self) -> RetrieveCache:
        return RetrieveCache(limit_mb=self.cache_mb)


class _Relay(QObject):
    """From the retrieve's threads to the GUI thread."""

    stored = Signal(object)  # list[Entry]: the scanner's entries of one object written
    progressed = Signal(object)  # Progress
    finished = Signal(object)  # RetrieveReport, or a str: why nothing could start


class RetrieveBar(QWidget):
    """Progress of the running retrieve, with Cancel, in the status bar."""

    def __init__(self, bar: QStatusBar) -> None:
        super().__init__()
        self.text = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(140)
        self.cancel = QPushButton("Cancel")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.text, self.progress, self.cancel):
            row.addWidget(w)
        bar.addPermanentWidget(self)
        self.setVisible(False)

    def show_state(self, retrieval: StudyRetrieval) -> None:
        self.setVisible(retrieval.running)
        self.text.setText(retrieval.status_text())
        total = (retrieval.completed + retrieval.failed + retrieval.remaining
                 if retrieval.remaining is not None else 0)
        self.progress.setRange(0, total)  # 0..0: busy, until the PACS says how many
        self.progress.setValue(retrieval.completed + retrieval.failed if total else 0)
        self.cancel.setEnabled(retrieval.state is RetrieveState.RUNNING)


def entries_of(stored: Stored) -> list[Entry]:
    """The object as the folder scanner lists it (nothing if it is not an image): the Studies
    panel and the reading order then match opening the study's folder."""
    from gradcam_viewer.imaging import scan_media

    try:
        return scan_media([stored.path]).catalogue.entries()
    except Exception:
        log.debug("a retrieved object could not be listed", exc_info=True)
        return []


class OpenFromPacs:
    """One retrieve at a time; a new one (the dialog, a worklist launch) cancels the running
    one and starts when it has ended."""

    def __init__(self, parent: QWidget, settings: QSettings, messages: Messages,
                 bar: QStatusBar, show: Callable[[Listing], None],
                 show_identifying: Callable[[], bool]) -> None:
        self._parent, self._messages, self._show = parent, messages, show
        self.show_identifying = show_identifying
        self.settings = RetrieveSettings(settings)
        self.bar = RetrieveBar(bar)
        self.bar.cancel.clicked.connect(self.cancel)
        self.retrieval: StudyRetrieval | None = None
        self.last_report: RetrieveReport | None = None
        self.dialog: QueryDialog | None = None  # kept between uses, with its last answer
        self._lock = threading.Lock()  # `_job` and the retrieval's cancel state, together
        self._job: Retriever | None = None  # the running retrieve (Cancel goes to it)
        self._thread: threading.Thread | None = None
        self._next: Callable[[], None] | None = None
        self._relay = _Relay(parent)
        self._relay.stored.connect(self._stored)
        self._relay.progressed.connect(self._progressed)
        self._relay.finished.connect(self._finished)
        self._timer = QTimer(parent)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    # ------------------------------------------------------------------ entry points ----
    def show_dialog(self) -> None:
        from gradcam_viewer.ui.pacs_query import QueryDialog

        if self.dialog is None:
            self.dialog = QueryDialog(self._parent, self, self._messages)
        else:
            self.dialog.reload_nodes()
            self.dialog.fill()  # "show identifying fields" may have changed meanwhile
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()

    def open_study(self, request: StudyRequest) -> None:
        """Retrieve the study `request` names from its node (by name in Settings > PACS
        nodes) and open it as it arrives. Problems are shown to the user."""
        from gradcam_viewer.pacs import NodeError, load_nodes
        from gradcam_viewer.pacs.nodes import retrieve_node

        try:
            node = retrieve_node(request.node, load_nodes())
        except NodeError as exc:
            self._messages.error(f"The study cannot be opened: {exc}.")
            return
        self.retrieve(node, request.study_uid, request=request)

    def retrieve(self, node: PacsNode, study_uid: str, series_uid: str = "",
                 request: StudyRequest | None = None) -> None:
        """Retrieve a study (or one series) from `node` and show it as it arrives. With
        `request` (by accession number) the study is looked up first."""
        start = functools.partial(self._start, node, study_uid, series_uid, request)
        if self.retrieval is not None and self.retrieval.running:
            self._next = start
            self.cancel()
            return
        start()

    def cancel(self) -> None:
        retrieval = self.retrieval
        if retrieval is None:
            return
        with self._lock:
            send, job = retrieval.cancel(), self._job
        if send and job is not None:
            job.cancel()  # C-CANCEL now; the thread finds it cancelled otherwise
        self.bar.show_state(retrieval)

    def detach(self) -> None:
        """The user opened something else: the study keeps arriving into the cache only."""
        if self.retrieval is not None:
            self.retrieval.detach()

    def is_cached(self, path: Path) -> bool:
        try:
            return Path(path).resolve().is_relative_to(self.settings.cache().root.resolve())
        except OSError:
            return False

    def shutdown(self) -> None:
        """Closing: cancel a running retrieve (waiting a little for it), then empty the
        cache unless "Keep retrieved studies" is on."""
        self._next = None
        self._timer.stop()
        self.cancel()
        if self._thread is not None:
            self._thread.join(8.0)
        if not self.settings.keep:
            self.settings.cache().clear()

    # ------------------------------------------------------------------ the retrieve ----
    def _start(self, node: PacsNode, study_uid: str, series_uid: str,
               request: StudyRequest | None) -> None:
        from gradcam_viewer.pacs import qr
        from gradcam_viewer.pacs.dimse import PacsError

        retrieval = self.retrieval = StudyRetrieval(node.title, study_uid, series_uid)
        self.bar.show_state(retrieval)
        self._timer.start()
        relay, cache = self._relay, self.settings.cache()

        def work() -> None:
            try:
                uid = study_uid
                if request is not None and not uid:
                    uid = qr.resolve(node, request).study_uid
                store = cache.store(uid, series_uid)
                job = qr.retrieval(node, store, on_progress=relay.progressed.emit,
                                   on_stored=lambda s: relay.stored.emit(entries_of(s)))
                with self._lock:
                    self._job = job
                    cancelled = retrieval.state is RetrieveState.CANCELLING
                if cancelled:
                    job.cancel()
                report = job.run()
                cache.evict(keep=(uid,))
                relay.finished.emit(report)
            except (PacsError, ValueError, OSError) as exc:  # QueryError is a ValueError
                relay.finished.emit(str(exc) or type(exc).__name__)
            except Exception as exc:
                log.exception("retrieve failed")
                relay.finished.emit(f"the retrieve failed unexpectedly ({type(exc).__name__})")

        self._thread = threading.Thread(target=work, daemon=True, name="gradcam-retrieve")
        self._thread.start()

    def _stored(self, entries: list[Entry]) -> None:
        retrieval = self.retrieval
        if retrieval is not None and retrieval.arrived(entries):
            self._tick()  # the first image: shown now

    def _progressed(self, progress: Progress) -> None:
        retrieval = self.retrieval
        if retrieval is not None:
            retrieval.progressed(progress.completed, progress.remaining, progress.failed)
            self.bar.show_state(retrieval)

    def _finished(self, report: RetrieveReport | str) -> None:
        retrieval = self.retrieval
        with self._lock:
            self._job = None
        if retrieval is None:
            return
        if isinstance(report, str):
            retrieval.finished("0 objects retrieved", 0, report, False)
        else:
            self.last_report = report
            retrieval.finished(report.summary(), report.failed, "\n".join(report.details()),
                               report.cancelled)
        self._tick()
        self._timer.stop()
        self.bar.show_state(retrieval)
        self._tell(retrieval)
        start, self._next = self._next, None
        if start is not None:
            start()

    def _tick(self) -> None:
        retrieval = self.retrieval
        if retrieval is None:
            return
        self.bar.show_state(retrieval)
        listing = retrieval.listing()
        if listing is not None:
            self._show(listing)

    def _tell(self, retrieval: StudyRetrieval) -> None:
        text = f"From {retrieval.source}: {retrieval.summary}."
        if retrieval.state is RetrieveState.CANCELLED:
            self._messages.status(f"Retrieve cancelled: {retrieval.summary}.")
        elif retrieval.problem:
            self._messages.error(f"{text}\n\n{retrieval.problem}")
        elif retrieval.received == 0:
            self._messages.error(f"{text}\n\nThe study holds no image this viewer opens.")
        else:
            self._messages.status(text)
