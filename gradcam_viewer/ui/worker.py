"""The background worker: owns the model and the engine, loads images and explains them.

It lives in its own QThread (moveToThread). TensorFlow is imported here, on first use, so the
window appears before TensorFlow has loaded. Every request carries an id; the session's
`RequestTracker` tells which have gone stale (an open only by a newer open), and the worker drops
those. A new model is installed only after its warm-up ran. Every failure becomes a signal with a
message; nothing escapes the thread.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.session.controller import RequestTracker
from gradcam_viewer.session.results import ExplainResult, ModelInfo

if TYPE_CHECKING:
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.models.bundle import ModelBundle

__all__ = ["RequestTracker", "Worker", "WorkerThread"]

log = logging.getLogger(__name__)


class WorkerThread(QThread):
    """A QThread whose event loop runs inside a Python `run()`.

    With Qt's own run(), every queued slot call enters Python on a fresh thread state, so
    thread-local data dies between calls; TensorFlow keeps its graph stack there and crashes
    when a second function is traced. Running exec() from Python keeps one thread state for
    the thread's whole life.
    """

    def run(self) -> None:  # noqa: D401 - Qt override
        self.exec()


class Worker(QObject):
    status = Signal(str)
    busy = Signal(bool)
    modelLoaded = Signal(object)  # ModelInfo
    modelFailed = Signal(str)
    imageLoaded = Signal(int, object)  # request id, LoadedImage
    explained = Signal(int, object)  # request id, ExplainResult
    failed = Signal(int, str)  # request id, message for the user
    setupNeeded = Signal(object)  # Suggestions: the model just loaded has no manifest
    previewed = Signal(int, object)  # preview id, {"values", "kind", "labels"} or {"error"}

    def __init__(self, tracker: RequestTracker):
        super().__init__()
        self.tracker = tracker
        self.bundle: ModelBundle | None = None
        self.explainer: Explainer | None = None
        self.model_id = 0
        self.reference_images = ""  # set by the GUI before it asks for CheXNet weights

    # --- model ---------------------------------------------------------------------------
    @Slot(str, str)
    def load_model(self, kind: str, path: str) -> None:
        """kind: 'demo', 'keras' or 'chexnet'. On any failure the previous model stays."""
        self.busy.emit(True)
        self.status.emit("Loading TensorFlow and the model...")
        try:
            import numpy as np

            from gradcam_viewer.cam import CamError, Explainer
            from gradcam_viewer.models import ModelLoadError, load_model_bundle
            from gradcam_viewer.models.chexnet import load_chexnet_weights

            try:
                if kind == "chexnet":
                    folder, self.reference_images = self.reference_images, ""
                    bundle = load_chexnet_weights(path, folder or None)
                else:
                    bundle = load_model_bundle(None if kind == "demo" else path)
                from gradcam_viewer.trust.ood import check_for, feature_layer_of  # issue 13

                explainer = Explainer(bundle.model, layer=bundle.target_layer, output=bundle.output,
                                      feature_layer=feature_layer_of(bundle.manifest))
                ood = check_for(bundle, explainer)  # issue 13
                self.status.emit("Warming up the model...")
                h, w, c = bundle.input_size
                explainer.explain(np.zeros((1, h, w, c), np.float32))  # trace the graph now
            except (ModelLoadError, CamError) as exc:
                self.modelFailed.emit(str(exc))
                self.status.emit("Model not changed")
                return
            # only a model that has explained once replaces the one in use
            self.bundle, self.explainer, self.ood = bundle, explainer, ood
            self.model_id += 1
            setup = (self._setup_suggestions(bundle, path)
                     if kind == "keras" and not bundle.has_manifest else None)
            # the set-up dialog says what the no-manifest notices would (one window, not three)
            self.modelLoaded.emit(ModelInfo(self.model_id, bundle.name, list(bundle.labels),
                                            dict(bundle.manifest), bundle.is_demo,
                                            [] if setup else list(bundle.notices),
                                            loader=bundle.loader))
            self.status.emit("Ready")
            if setup is not None:
                self.setupNeeded.emit(setup)
        except BaseException as exc:  # noqa: BLE001 - the thread must survive anything
            log.exception("model load failed")
            where = f"'{Path(path).name}' " if path else ""
            self.modelFailed.emit(f"The model {where}could not be loaded "
                                  f"({type(exc).__name__}: {exc}).")
            self.status.emit("Model not changed")
        finally:
            self.busy.emit(False)

    def _setup_suggestions(self, bundle: Any, path: str) -> Any:
        """What the set-up dialog pre-fills, computed here (it needs the Keras model)."""
        from gradcam_viewer.models.loaders import model_location
        from gradcam_viewer.models.manifest import sha256_of
        from gradcam_viewer.models.suggest import suggest

        try:
            where = model_location(Path(path))  # a SavedModel's saved_model.pb: its folder
            found = suggest(bundle.model, where.stem)
            found.path, found.sha256 = str(where), sha256_of(where)
        except Exception:  # noqa: BLE001 - no dialog, the model stays usable with defaults
            log.exception("no set-up suggestions")
            return None
        return found

    @Slot(int, object, object)
    def preview(self, preview_id: int, draft: Any, image: Any) -> None:
        """The current image's outputs under a draft manifest (for the set-up dialog)."""
        try:
            from gradcam_viewer.models import ModelLoadError
            from gradcam_viewer.models.bundle import bundle_for

            if self.bundle is None or str(self.bundle.path) != str(draft.get("_path")):
                self.previewed.emit(preview_id, {"error": "The model changed."})
                return
            manifest = {k: v for k, v in draft.items() if not k.startswith("_")}
            try:
                trial = bundle_for(self.bundle.model, manifest, self.bundle.path)
            except ModelLoadError as exc:
                self.previewed.emit(preview_id, {"error": str(exc)})
                return
            raw = self.explainer.predict(trial.prepare(image))
            self.previewed.emit(preview_id, {"values": trial.values(raw[0]),
                                             "kind": trial.output_kind,
                                             "labels": list(trial.labels)})
        except BaseException as exc:  # noqa: BLE001
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
            self.imageLoaded.emit(request_id, image)
            self._explain(request_id, image, method)
        except BaseException as exc:  # noqa: BLE001
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
        except BaseException as exc:  # noqa: BLE001
            log.exception("explain failed")
            self.failed.emit(request_id, f"The explanation failed ({type(exc).__name__}).")
        finally:
            self.busy.emit(False)
            self.status.emit("Ready")

    def _explain(self, request_id: int, image: LoadedImage, method: str) -> None:
        if self.explainer is None or self.tracker.explain_is_stale(request_id):
            return  # no model yet (the GUI asks again when it arrives), or superseded
        self.status.emit(f"Computing {method} for {Path(image.path).name}...")
        started = time.perf_counter()
        try:
            result = self.explainer.explain(self.bundle.prepare(image), method=method)
        except Exception as exc:
            log.exception("engine failed on %s", Path(image.path).name)
            self.failed.emit(request_id, f"The model failed on '{Path(image.path).name}' "
                                         f"({type(exc).__name__}: {exc}).")
            return
        seconds = time.perf_counter() - started
        key = (str(image.path), image.frame, method, self.model_id)
        self.explained.emit(request_id, ExplainResult(
            key=key, probabilities=self.bundle.values(result.probabilities[0]),
            heatmaps=result.heatmaps[0],
            layer=result.layer_name, method=result.method, score=result.score, seconds=seconds,
            ood=self.ood.record(result.features[0])))  # issue 13
