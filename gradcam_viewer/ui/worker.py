"""The background worker: owns the model and the engine, loads images and explains them.

It lives in its own QThread (moveToThread). TensorFlow is imported off the GUI thread (the
window starts the import in a thread of its own, `ui/preload.py`), so the window appears before
TensorFlow has loaded. Every request carries an id; the session's `RequestTracker` tells which
have gone stale (an open only by a newer open, a read ahead once withdrawn), and the worker
drops those. Every failure becomes a signal with a message; nothing escapes the thread.

Images: the requests go to the agenda (`session/agenda.py`), which orders the work: user
requests first, reads ahead one stage at a time. Files are decoded on reading threads (large
compressed frames in child processes, `imaging/decode_processes.py`), so the worker's thread
only makes model inputs and explanations and is free while a file decodes; a decode nobody
wants any more is given up. The image is sent as soon as it is decoded, its explanation when
it is done.

Cold start: a new model is installed only after its warm-up ran, and the warm-up is eager (no
tracing): the first image a request brings after the load, explained as usual, else zeros (a
queued call behind the requests already waiting). Explanations run eagerly until the method's
compiled function has been traced by a background thread (`cam/tracing.py`), which starts only
after the first result was sent, so that tracing never slows the first heatmap.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, Signal, Slot

from gradcam_viewer.cam.tracing import BackgroundTracer
from gradcam_viewer.imaging.decode_processes import DecodeCancelled, DecodePool, Offload
from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.session.agenda import PREFETCH, Agenda, Job, Reply, Stage
from gradcam_viewer.session.controller import (
    ExplainRequest,
    OpenRequest,
    RequestTracker,
)
from gradcam_viewer.session.read_ahead import PrefetchRequest
from gradcam_viewer.session.results import ModelInfo
from gradcam_viewer.ui import preload

if TYPE_CHECKING:
    import numpy as np

    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.cam.result import Explanation, JsonValue
    from gradcam_viewer.models.bundle import ModelBundle
    from gradcam_viewer.models.manifest import Manifest
    from gradcam_viewer.models.suggest import Suggestions
    from gradcam_viewer.trust.ood import OodCheck

__all__ = ["RequestTracker", "Worker", "WorkerThread"]

log = logging.getLogger(__name__)

READING_THREADS = 3  # the user's file, one read ahead, and a decode being given up


class WorkerThread(QThread):
    """A QThread whose event loop runs inside a Python `run()`.

    With Qt's own run(), every queued slot call enters Python on a fresh thread state, so
    thread-local data dies between calls; TensorFlow keeps its graph stack there and crashes
    when a second function is traced. Running exec() from Python keeps one thread state for
    the thread's whole life.
    """

    def run(self) -> None:
        self.exec()


@dataclass
class _Candidate:
    """A model loaded but not yet warmed up (not in use)."""

    kind: str
    path: str
    bundle: ModelBundle
    explainer: Explainer
    ood: OodCheck


class Worker(QObject):
    """Configured only by what its requests carry (queued slot calls from the GUI thread)."""

    status = Signal(str)
    busy = Signal(bool)
    model_loaded = Signal(object)  # ModelInfo
    model_failed = Signal(str)
    image_loaded = Signal(int, object)  # request id, LoadedImage
    explained = Signal(int, object)  # request id, ExplainResult
    failed = Signal(int, str)  # request id, message for the user
    setup_needed = Signal(object)  # Suggestions: the model just loaded has no manifest
    previewed = Signal(int, object)  # preview id, {"values", "kind", "labels"} or {"error"}
    _decoded = Signal(object, object)  # Job, LoadedImage | message | None: from reading threads

    def __init__(self, tracker: RequestTracker, budget: int | None = None) -> None:
        """`budget`: the session cache's byte budget (reads ahead that do not fit beside the
        image on screen are not decoded; None: no limit)."""
        super().__init__()
        self.tracker = tracker
        self.bundle: ModelBundle | None = None
        self.explainer: Explainer | None = None
        self.ood: OodCheck | None = None
        self.model_id = 0
        self._candidate: _Candidate | None = None  # loaded, waiting for its warm-up
        self._unannounced: _Candidate | None = None  # installed, modelLoaded not yet sent
        self.tracer = BackgroundTracer(lambda explainer: explainer is self.explainer)
        self.agenda = Agenda(tracker, budget)  # images to decode and explain, user requests first
        self.decoders = DecodePool()  # large compressed frames, off the GIL
        self._reading = ThreadPoolExecutor(READING_THREADS, thread_name_prefix="gradcam-read")
        self._decoded.connect(self._on_decoded)  # from reading threads: queued to this one
        self._run_posted = False
        self._closing = False

    def stop(self) -> None:
        """After the worker's thread has ended: decodes still running are given up (the pool
        is closed first, so their children are not replaced), and a trace in progress
        finishes."""
        self._closing = True
        self.decoders.close()
        self._reading.shutdown(wait=True, cancel_futures=True)
        self.tracer.stop()

    # --- model ---------------------------------------------------------------------------
    @Slot(str, str, str)
    def load_model(self, kind: str, path: str, reference_images: str = "") -> None:
        """kind: 'demo', 'keras' or 'chexnet'; `reference_images`: CheXNet's folder whose
        mean/std normalise ("": per-image z-score). On any failure the previous model stays."""
        self.busy.emit(True)
        try:
            self._settle_candidate()  # a model still waiting for its warm-up comes first
            self._announce_model()
            self.status.emit("Loading TensorFlow and the model...")
            preload.wait()  # never import TensorFlow beside the window's import thread
            from gradcam_viewer.cam import CamError, Explainer
            from gradcam_viewer.models import ModelLoadError, load_model_bundle
            from gradcam_viewer.models.chexnet import load_chexnet_weights

            try:
                if kind == "chexnet":
                    bundle = load_chexnet_weights(path, reference_images or None)
                else:
                    bundle = load_model_bundle(None if kind == "demo" else path)
                from gradcam_viewer.trust.ood import check_for, feature_layer_of

                explainer = Explainer(bundle.model, layer=bundle.target_layer, output=bundle.output,
                                      feature_layer=feature_layer_of(bundle.manifest))
                ood = check_for(bundle, explainer)
            except (ModelLoadError, CamError) as exc:
                self.model_failed.emit(str(exc))
                self.status.emit("Model not changed")
                return
            # Warmed up by the next request's image, or on zeros by this queued call (it runs
            # after the requests already waiting)
            self._candidate = _Candidate(kind, path, bundle, explainer, ood)
            QMetaObject.invokeMethod(self, "settle_model", Qt.ConnectionType.QueuedConnection)
        except BaseException as exc:
            log.exception("model load failed")
            self._model_failed(path, exc)
        finally:
            self.busy.emit(False)

    @Slot()
    def settle_model(self) -> None:
        """Warm up (on zeros) and install a model no request has warmed up with an image
        (a user's image on its way warms it up instead)."""
        if self._candidate is None or self.agenda.user_waiting():
            return
        self.busy.emit(True)
        try:
            self._settle_candidate()
            self._announce_model()
        finally:
            self.busy.emit(False)

    def _model_failed(self, path: str, exc: BaseException) -> None:
        where = f"'{Path(path).name}' " if path else ""
        self.model_failed.emit(f"The model {where}could not be loaded "
                              f"({type(exc).__name__}: {exc}).")
        self.status.emit("Model not changed")

    def _settle_candidate(self, x: np.ndarray | None = None,
                          method: str = "gradcam") -> Explanation | None:
        """Warm the waiting model up, eagerly, on `x` (a request's first image) or else on
        zeros, and install it if that ran (announced by `_announce_model`, after the
        explanation of `x` has gone out). Returns that explanation, or None."""
        candidate, self._candidate = self._candidate, None
        if candidate is None:
            return None
        self.status.emit("Warming up the model...")
        result = None
        if x is not None:
            try:
                result = candidate.explainer.explain(x, method=method, eager=True)
            except Exception:
                log.warning("first explanation with the new model failed", exc_info=True)
        if result is None and not self._warm_up(candidate):
            return None
        # only a model that has explained once replaces the one in use
        self.bundle, self.explainer, self.ood = (candidate.bundle, candidate.explainer,
                                                 candidate.ood)
        self.model_id += 1
        self.agenda.model_id = self.model_id
        self._unannounced = candidate
        return result

    def _warm_up(self, candidate: _Candidate) -> bool:
        import numpy as np

        from gradcam_viewer.cam import CamError

        h, w, c = candidate.bundle.input_size
        try:
            candidate.explainer.explain(np.zeros((1, h, w, c), np.float32), eager=True)
            return True
        except CamError as exc:
            self.model_failed.emit(str(exc))
            self.status.emit("Model not changed")
        except Exception as exc:
            log.exception("model warm-up failed")
            self._model_failed(candidate.path, exc)
        return False

    def _announce_model(self) -> None:
        candidate, self._unannounced = self._unannounced, None
        if candidate is None:
            return
        bundle = candidate.bundle
        setup = (self._setup_suggestions(bundle, candidate.path)
                 if candidate.kind == "keras" and not bundle.has_manifest else None)
        # the set-up dialog says what the no-manifest notices would (one window, not three)
        self.model_loaded.emit(ModelInfo(self.model_id, bundle.name, list(bundle.labels),
                                        cast("dict[str, JsonValue]", dict(bundle.manifest)),
                                        bundle.is_demo,
                                        [] if setup else list(bundle.notices),
                                        loader=bundle.loader))
        self.status.emit("Ready")
        if setup is not None:
            self.setup_needed.emit(setup)

    def _setup_suggestions(self, bundle: ModelBundle, path: str) -> Suggestions | None:
        """What the set-up dialog pre-fills, computed here (it needs the Keras model)."""
        from gradcam_viewer.models.loaders import model_location
        from gradcam_viewer.models.manifest import sha256_of
        from gradcam_viewer.models.suggest import suggest

        try:
            where = model_location(Path(path))  # a SavedModel's saved_model.pb: its folder
            found = suggest(bundle.model, where.stem)
            found.path, found.sha256 = str(where), sha256_of(where)
        except Exception:
            log.exception("no set-up suggestions")
            return None
        return found

    @Slot(int, str, object, object)
    def preview(self, preview_id: int, path: str, draft: Manifest, image: LoadedImage) -> None:
        """The current image's outputs under a draft manifest (for the set-up dialog)."""
        try:
            from gradcam_viewer.models import ModelLoadError
            from gradcam_viewer.models.bundle import bundle_for

            if (self.bundle is None or self.explainer is None
                    or str(self.bundle.path) != path):
                self.previewed.emit(preview_id, {"error": "The model changed."})
                return
            try:
                trial = bundle_for(self.bundle.model, draft, self.bundle.path)
            except ModelLoadError as exc:
                self.previewed.emit(preview_id, {"error": str(exc)})
                return
            raw = self.explainer.predict(trial.prepare(image))
            self.previewed.emit(preview_id, {"values": trial.values(raw[0]),
                                             "kind": trial.output_kind,
                                             "labels": list(trial.labels)})
        except BaseException as exc:
            log.exception("preview failed")
            self.previewed.emit(preview_id, {"error": f"The preview failed "
                                                      f"({type(exc).__name__})."})

    # --- images --------------------------------------------------------------------------
    @Slot(int, str, int, str)
    def open_image(self, request_id: int, path: str, frame: int, method: str) -> None:
        """Load a file, then explain it with `method` (unless that has gone stale)."""
        self.status.emit(f"Opening {Path(path).name}...")
        self._add(OpenRequest(request_id, Path(path), frame, method))

    @Slot(int, object, str)
    def explain_image(self, request_id: int, image: LoadedImage, method: str) -> None:
        """Explain an image the GUI already has (another CAM method, or a new model)."""
        self._add(ExplainRequest(request_id, image, method))

    @Slot(object)
    def read_ahead(self, request: PrefetchRequest) -> None:
        """Decode and explain a neighbour into the session's cache, after all user work."""
        self._add(request)

    def _add(self, request: OpenRequest | ExplainRequest | PrefetchRequest) -> None:
        self._send(self.agenda.add(request))
        self._pump()

    def _pump(self) -> None:
        """Start the decodes the agenda allows now, and run its next stage as a queued call:
        requests that came meanwhile reach the agenda first, so a user request waits at most
        for the stage in hand."""
        for job in self.agenda.to_decode():
            self._reading.submit(self._read, job)
        if not self._run_posted and self.agenda.next_stage() is not None:
            self._run_posted = True
            QMetaObject.invokeMethod(self, "run_stage", Qt.ConnectionType.QueuedConnection)
        elif self._candidate is not None and not self.agenda.user_waiting():
            # no request's image will warm the new model up: zeros will
            QMetaObject.invokeMethod(self, "settle_model", Qt.ConnectionType.QueuedConnection)

    def _read(self, job: Job) -> None:
        """On a reading thread: decode the job's image (large compressed frames in a child
        process, given up as soon as nobody wants them) and hand it to the worker's thread."""
        from gradcam_viewer import imaging

        def unwanted() -> bool:
            return self._closing or self.agenda.image_unwanted(job)

        try:
            if unwanted():
                raise DecodeCancelled
            image = imaging.load_image(job.path, job.frame, Offload(self.decoders, unwanted))
            # kept on the image, off the GUI and worker threads: the window lookup, and the
            # display pixels the model input and the screen are both made from
            _ = image.value_range, image.indexed_pixels, imaging.model_pixels(image)
            self._decoded.emit(job, image)
        except DecodeCancelled:
            self._decoded.emit(job, None)
        except imaging.ImageLoadError as exc:
            self._decoded.emit(job, str(exc))
        except BaseException as exc:
            log.exception("open failed for %s", job.path.name)
            self._decoded.emit(job, f"'{job.path.name}' could not be processed "
                                    f"({type(exc).__name__}).")

    @Slot(object, object)
    def _on_decoded(self, job: Job, outcome: LoadedImage | str | None) -> None:
        """A reading thread is done: the image, a message for the user, or None (given up)."""
        if outcome is None:
            self.agenda.decode_given_up(job)
        elif isinstance(outcome, str):
            self._send(self.agenda.decode_failed(job, outcome))
        else:
            self._send(self.agenda.decoded(job, outcome))
        self._pump()

    @Slot()
    def run_stage(self) -> None:
        """The agenda's next stage: a job's model input, or its explanation."""
        self._run_posted = False
        job = self.agenda.next_stage()
        if job is not None:
            user = job.kind != PREFETCH
            self.busy.emit(True)
            try:
                if job.stage is Stage.PREPARE:
                    self._prepare(job)
                else:
                    self._explain(job)
            except BaseException as exc:
                log.exception("explain failed")
                self._send(self.agenda.failed(job, f"The explanation failed "
                                                   f"({type(exc).__name__})."))
            finally:
                self.busy.emit(False)
                if user or not self.agenda.jobs:
                    self.status.emit("Ready")
        self._pump()

    def _send(self, replies: list[Reply]) -> None:
        for kind, request_id, payload in replies:
            if kind == "image":
                self.image_loaded.emit(request_id, payload)
            elif kind == "result":
                self.explained.emit(request_id, payload)
            else:
                self.failed.emit(request_id, payload)

    def _prepare(self, job: Job) -> None:
        """The model input, with the model in use (a model waiting for its warm-up prepares
        its own when it explains)."""
        assert job.image is not None
        x = None
        if self._candidate is None and self.bundle is not None:
            try:
                x = self.bundle.prepare(job.image)
            except Exception:  # the explanation stage tries again and says why
                log.debug("model input failed", exc_info=True)
        self.agenda.prepared(job, x, self.model_id if x is not None else -1)

    def _explain(self, job: Job) -> None:
        try:
            self._explain_current(job)
        finally:
            self._announce_model()  # a model this request warmed up: after its explanation

    def _explain_current(self, job: Job) -> None:
        image, method = job.image, job.method
        assert image is not None
        started = time.perf_counter()
        result = None
        if self._candidate is not None:
            try:
                x = self._candidate.bundle.prepare(image)
            except Exception:  # noqa: BLE001 - reported below by the model that runs
                x = None
            result = self._settle_candidate(x, method)
        if self.explainer is None or self.bundle is None or self.ood is None:
            self._send(self.agenda.explained(job, None))  # no model yet: the GUI asks again
            return
        reading = "Reading ahead" if job.kind == PREFETCH else f"Computing {method} for"
        self.status.emit(f"{reading} {Path(image.path).name}...")
        eager = not self.explainer.is_traced(method)
        if result is None:
            x = self.agenda.model_input(job)  # None: made for another model, or none
            try:
                result = self.explainer.explain(self.bundle.prepare(image) if x is None else x,
                                                method=method, eager=eager)
            except Exception as exc:
                log.exception("engine failed on %s", Path(image.path).name)
                self._send(self.agenda.failed(job, f"The model failed on "
                                                   f"'{Path(image.path).name}' "
                                                   f"({type(exc).__name__}: {exc})."))
                return
        seconds = time.perf_counter() - started
        key = (str(image.path), image.frame, method, self.model_id)
        self._send(self.agenda.explained(job, result.result(
            0, key, self.bundle.values(result.probabilities[0]),
            ood=self.ood.record(None if result.features is None else result.features[0]),
            seconds=seconds)))
        if eager:  # traced in the background from now on; eager until it is ready
            self.tracer.request(self.explainer, method)
