"""The worker's thread, the queued calls that carry the session's requests to it, and its
replies turned into session events.

The worker is configured only through these requests: what a request needs (a CheXNet
reference folder, say) travels with it, never as an attribute set from the GUI thread. Its
replies come from its thread to slots of this object, which lives on the GUI thread, so they
are queued there (a lambda would run in the worker's thread).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.session.controller import (
    Effects,
    ExplainRequest,
    ModelRequest,
    OpenRequest,
    Redraw,
    Request,
    SessionController,
)
from gradcam_viewer.session.read_ahead import PrefetchRequest
from gradcam_viewer.session.results import ExplainResult, ModelInfo
from gradcam_viewer.ui.worker import Worker, WorkerThread


class WorkerLink(QObject):
    request_model = Signal(str, str, str)  # kind, path, reference images
    request_open = Signal(int, str, int, str)  # request id, path, frame, method
    request_explain = Signal(int, object, str)  # request id, LoadedImage, method
    request_prefetch = Signal(object)  # PrefetchRequest

    def __init__(self, parent: QObject, session: SessionController,
                 apply: Callable[[Effects], None], drawing: Callable[[], bool]) -> None:
        """`apply`: what the window does with the effects of the session's events;
        `drawing`: whether the screen is still drawing what was asked for (reads ahead wait
        until it is done: `release`)."""
        super().__init__(parent)
        self._session, self._apply, self._drawing = session, apply, drawing
        self._waiting: list[PrefetchRequest] = []
        self.thread_ = WorkerThread(parent)
        self.thread_.setObjectName("gradcam-worker")
        # Tracing a deep Keras graph recurses deeply; the platform default stack can be small
        self.thread_.setStackSize(64 * 1024 * 1024)
        self.worker = w = Worker(session.tracker, session.cache.budget)
        w.moveToThread(self.thread_)
        self.request_model.connect(w.load_model)
        self.request_open.connect(w.open_image)
        self.request_explain.connect(w.explain_image)
        self.request_prefetch.connect(w.read_ahead)
        w.busy.connect(self._busy)
        w.model_loaded.connect(self._model_loaded)
        w.model_failed.connect(self._model_failed)
        w.image_loaded.connect(self._image_loaded)
        w.explained.connect(self._explained)
        w.failed.connect(self._failed)
        self.thread_.start()

    def send(self, request: Request) -> None:
        if isinstance(request, OpenRequest):
            self.request_open.emit(request.request_id, str(request.path), request.frame,
                                   request.method)
        elif isinstance(request, ExplainRequest):
            self.request_explain.emit(request.request_id, request.image, request.method)
        elif isinstance(request, ModelRequest):
            self.request_model.emit(request.kind, request.path, request.reference_images)
        elif isinstance(request, PrefetchRequest):
            self._waiting.append(request)
            if not self._drawing():
                self.release()

    def release(self) -> None:
        """The screen has drawn what the user asked for: the reads ahead may start (the worker
        drops those withdrawn meanwhile)."""
        waiting, self._waiting = self._waiting, []
        for request in waiting:
            self.request_prefetch.emit(request)

    def _busy(self, _on: bool) -> None:
        """The worker's own busy signal: the busy bar follows the session's requests."""
        self._apply(Effects(redraw=Redraw.STATUS))

    def _model_loaded(self, info: ModelInfo) -> None:
        self._apply(self._session.model_loaded(info))

    def _model_failed(self, message: str) -> None:
        self._apply(self._session.model_failed(message))

    def _image_loaded(self, request: int, image: LoadedImage) -> None:
        self._apply(self._session.image_loaded(request, image))

    def _explained(self, request: int, result: ExplainResult) -> None:
        self._apply(self._session.explained(request, result))

    def _failed(self, request: int, message: str) -> None:
        self._apply(self._session.failed(request, message))

    def stop(self) -> None:
        """Let the request in hand finish and the thread end."""
        if self.thread_.isRunning():
            self.thread_.quit()
            self.thread_.wait(60_000)
