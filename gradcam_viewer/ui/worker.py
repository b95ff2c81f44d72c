"""The background worker: owns the model and the engine, loads images and explains them.

It lives in its own QThread (moveToThread). TensorFlow is imported off the GUI thread (the
window starts the import in a thread of its own, `ui/preload.py`), so the window appears before
TensorFlow has loaded. Every request carries an id; the session's `RequestTracker` tells which
have gone stale (an open only by a newer open), and the worker drops those. Every failure
becomes a signal with a message; nothing escapes the thread.

Cold start: a new model is installed only after its warm-up ran, and the warm-up is eager (no
tracing): the first image a request brings after the load, explained as usual, else zeros (a
queued call behind the requests already waiting). Explanations run eagerly until the method's
compiled function has been traced by a background thread (`cam/tracing.py`), which starts only
after the first result was sent, so that tracing never slows the first heatmap.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, Signal, Slot

from gradcam_viewer.cam.tracing import BackgroundTracer
from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.session.controller import RequestTracker
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

    def __init__(self, tracker: RequestTracker) -> None:
        super().__init__()
        self.tracker = tracker
        self.bundle: ModelBundle | None = None
        self.explainer: Explainer | None = None
        self.ood: OodCheck | None = None
        self.model_id = 0
        self._candidate: _Candidate | None = None  # loaded, waiting for its warm-up
        self._unannounced: _Candidate | None = None  # installed, modelLoaded not yet sent
        self.tracer = BackgroundTracer(lambda explainer: explainer is self.explainer)

    def stop(self) -> None:
        """After the worker's thread has ended: let a trace in progress finish."""
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
        """Warm up (on zeros) and install a model no request has warmed up with an image."""
        if self._candidate is None:
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
        if self.tracker.open_is_stale(request_id):
            return
        self.busy.emit(True)
        try:
            from gradcam_viewer.imaging import ImageLoadError, load_image

            self.status.emit(f"Opening {Path(path).name}...")
            try:
                image = load_image(path, frame)
            except ImageLoadError as exc:
                self.failed.emit(request_id, str(exc))
                return
            if self.tracker.open_is_stale(request_id):
                return
            _ = image.value_range, image.indexed_pixels  # cached on the image: not on the GUI thread
            self.image_loaded.emit(request_id, image)
            self._explain(request_id, image, method)
        except BaseException as exc:
            log.exception("open failed for %s", Path(path).name)
            self.failed.emit(request_id, f"'{Path(path).name}' could not be processed "
                                         f"({type(exc).__name__}).")
        finally:
            self.busy.emit(False)
            self.status.emit("Ready")

    @Slot(int, object, str)
    def explain_image(self, request_id: int, image: LoadedImage, method: str) -> None:
        """Explain an image the GUI already has (another CAM method, or a new model)."""
        self.busy.emit(True)
        try:
            self._explain(request_id, image, method)
        except BaseException as exc:
            log.exception("explain failed")
            self.failed.emit(request_id, f"The explanation failed ({type(exc).__name__}).")
        finally:
            self.busy.emit(False)
            self.status.emit("Ready")

    def _explain(self, request_id: int, image: LoadedImage, method: str) -> None:
        if self.tracker.explain_is_stale(request_id):
            return  # superseded (a model waiting for its warm-up gets it from `settle_model`)
        try:
            self._explain_current(request_id, image, method)
        finally:
            self._announce_model()  # a model this request warmed up: after its explanation

    def _explain_current(self, request_id: int, image: LoadedImage, method: str) -> None:
        started = time.perf_counter()
        result = None
        if self._candidate is not None:
            try:
                x = self._candidate.bundle.prepare(image)
            except Exception:  # noqa: BLE001 - reported below by the model that runs
                x = None
            result = self._settle_candidate(x, method)
        if self.explainer is None or self.bundle is None or self.ood is None:
            return  # no model yet (the GUI asks again when it arrives)
        self.status.emit(f"Computing {method} for {Path(image.path).name}...")
        eager = not self.explainer.is_traced(method)
        if result is None:
            try:
                result = self.explainer.explain(self.bundle.prepare(image), method=method,
                                                eager=eager)
            except Exception as exc:
                log.exception("engine failed on %s", Path(image.path).name)
                self.failed.emit(request_id, f"The model failed on '{Path(image.path).name}' "
                                             f"({type(exc).__name__}: {exc}).")
                return
        seconds = time.perf_counter() - started
        key = (str(image.path), image.frame, method, self.model_id)
        self.explained.emit(request_id, result.result(
            0, key, self.bundle.values(result.probabilities[0]),
            ood=self.ood.record(None if result.features is None else result.features[0]),
            seconds=seconds))
        if eager:  # traced in the background from now on; eager until it is ready
            self.tracer.request(self.explainer, method)
