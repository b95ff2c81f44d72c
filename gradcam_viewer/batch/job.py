"""The stages of explaining one image for `explain`, shared by the local pipeline and the Ray
actors: decode (file -> image, display pixels, model input), explain (a batch through the
model, split into one `ExplainResult` per image), write (overlays and JSON; returns the CSV
row). The records, names and CSV rows come from gradcam_viewer.outputs, as for every other
output of the program.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.cam.result import ExplainResult
from gradcam_viewer.outputs.layout import Planned

if TYPE_CHECKING:
    from gradcam_viewer.cam.explainer import Explainer
    from gradcam_viewer.imaging.image import LoadedImage
    from gradcam_viewer.models.bundle import ModelBundle
    from gradcam_viewer.outputs.dicom.run import DicomRun
    from gradcam_viewer.trust.ood import OodCheck

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSettings:
    """Everything a worker needs to rebuild the job (plain values: it travels to Ray actors)."""

    model: Path | None = None
    chexnet_weights: Path | None = None
    reference_images: Path | None = None
    layer: str | None = None
    method: str = "gradcam"
    overlays: tuple[str, ...] = ()  # label names to draw
    frame: int = 1  # 1-based
    opacity: float = 0.45
    colormap: str = "inferno"
    include_ids: bool = True
    overwrite: bool = False


def load_bundle(settings: JobSettings) -> ModelBundle:
    """The model bundle the settings name. Raises ModelLoadError."""
    from gradcam_viewer.models import load_model_bundle
    from gradcam_viewer.models.chexnet import load_chexnet_weights

    if settings.chexnet_weights:
        return load_chexnet_weights(settings.chexnet_weights, settings.reference_images)
    return load_model_bundle(settings.model)


def explainer_for(bundle: ModelBundle, settings: JobSettings) -> Explainer:
    """The bundle's Explainer with the settings' layer and method. Raises CamError."""
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.trust.ood import feature_layer_of

    return Explainer(bundle.model, layer=settings.layer or bundle.target_layer,
                     method=settings.method, output=bundle.output,
                     feature_layer=feature_layer_of(bundle.manifest))


@dataclass
class Decoded:
    image: LoadedImage
    display: np.ndarray  # 8-bit display pixels (the overlay's background)
    batch: np.ndarray  # [1, h, w, c] model input


@dataclass
class Written:
    row: list[str]  # the image's predictions.csv row
    warning: str | None = None  # what the user reads about it (out of distribution)


class ExplainJob:
    """One model and one set of output settings; the stages are safe to call from threads.
    `dicom`: a DicomRun that also writes each image's DICOM objects (local runs)."""

    def __init__(self, bundle: ModelBundle, explainer: Explainer, settings: JobSettings,
                 ood_check: OodCheck | None = None, dicom: DicomRun | None = None):
        from gradcam_viewer.batch.memory import keep_freed_memory
        from gradcam_viewer.trust.ood import check_for

        keep_freed_memory()  # the stages free and reallocate ~30 MB per image
        self.bundle, self.explainer, self.settings = bundle, explainer, settings
        self.wanted = [bundle.labels.index(name) for name in settings.overlays]
        self.ood_check = ood_check if ood_check is not None else check_for(bundle, explainer)
        self.dicom = dicom

    @classmethod
    def from_settings(cls, settings: JobSettings) -> ExplainJob:
        bundle = load_bundle(settings)
        return cls(bundle, explainer_for(bundle, settings), settings)

    def decode(self, item: Planned) -> Decoded:
        from gradcam_viewer.imaging import load_image, to_display

        image = load_image(item.source, frame=max(self.settings.frame, 1) - 1)
        display = to_display(image)
        # the model sees the default display pixels (imaging.model_pixels): computed once
        return Decoded(image, display, self.bundle.prepare(display))

    def explain(self, decoded: list[Decoded]) -> list[ExplainResult]:
        batch = self.explainer.explain(np.concatenate([d.batch for d in decoded]))
        results = []
        for i, d in enumerate(decoded):
            key = (str(d.image.path), int(d.image.frame), batch.method, 0)
            features = None if batch.features is None else batch.features[i]
            results.append(batch.result(i, key, self.bundle.values(batch.probabilities[i]),
                                        ood=self.ood_check.record(features)))
        return results

    def write(self, item: Planned, decoded: Decoded, result: ExplainResult) -> Written:
        """Overlays, JSON (and DICOM objects) of one image; returns its CSV row."""
        from gradcam_viewer.outputs.dicom.objects import DicomExport
        from gradcam_viewer.outputs.export import write_json, write_png_fast
        from gradcam_viewer.outputs.records import calls_of, csv_row, prediction_record, source_id
        from gradcam_viewer.render import OverlayStyle, composite
        from gradcam_viewer.trust.ood import csv_flag

        started = time.perf_counter()
        s, image, model = self.settings, decoded.image, self.bundle.identity
        values, ood = result.probabilities, result.ood
        source = source_id(image, item.rel, s.include_ids)
        record = prediction_record(source, image, model, result)
        item.folder.mkdir(parents=True, exist_ok=True)
        style = OverlayStyle(opacity=s.opacity, colormap=s.colormap)
        value_key = "Score" if model.output_kind == "scores" else "Probability"
        for k in self.wanted:
            heat = result.display_heatmap(k, image.size)
            rgb = composite(decoded.display, heat, style)
            write_png_fast(item.overlay_path(model.labels[k]), rgb,
                           {"Label": model.labels[k],
                            value_key: f"{values[k]:.4f}",
                            "Source": item.rel, "Frame": str(source.frame),
                            "Model": model.name, "Method": result.method,
                            "OutOfDistribution": csv_flag(ood),
                            "Notice": model.disclaimer},
                           s.overwrite)
        write_json(item.json_path, record, s.overwrite)
        if self.dicom is not None:
            self.dicom.after_image(item, DicomExport(image, decoded.display, result, model,
                                                     s.overlays, style), s.overwrite)
        log.info("wrote %s in %.2f s", item.source.name, time.perf_counter() - started)
        warning = (f"warning: {item.rel}: unlike the images this model was checked on "
                   f"(distance percentile {ood['percentile']:.1f})"
                   if ood and ood.get("flagged") else None)
        return Written(csv_row(source, values, s.include_ids, model.output_kind, ood,
                               calls_of(model, values)), warning)


def failure_message(item: Planned, exc: BaseException) -> str:
    """What the user reads when one image fails (no traceback, no patient data)."""
    from gradcam_viewer.imaging import ImageLoadError
    from gradcam_viewer.outputs.safe_write import OutputExistsError

    if isinstance(exc, ImageLoadError):
        return f"error: cannot open '{item.rel}': {exc.reason}"
    if isinstance(exc, OutputExistsError):
        return (f"error: {item.rel}: output {exc}; use --force to overwrite or --resume to "
                "complete an earlier run")
    if isinstance(exc, OSError):
        return f"error: {item.rel}: cannot write its outputs ({exc.strerror or exc})"
    return f"error: {item.rel}: {type(exc).__name__}: {exc}"
