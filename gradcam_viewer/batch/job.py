"""The stages of explaining one image for `explain`, shared by the local pipeline and the Ray
actors: decode (file -> image, display pixels, model input), explain (a batch through the
model), write (overlays and JSON; returns the CSV row). The records, names and CSV rows come
from records.py, export.py and output_layout.py, as for every other output of the program.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradcam_viewer.outputs.layout import Planned

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


def load_bundle(settings: JobSettings) -> Any:
    """The model bundle the settings name. Raises ModelLoadError."""
    from gradcam_viewer.models import load_model_bundle
    from gradcam_viewer.models.chexnet import load_chexnet_weights

    if settings.chexnet_weights:
        return load_chexnet_weights(settings.chexnet_weights, settings.reference_images)
    return load_model_bundle(settings.model)


def explainer_for(bundle: Any, settings: JobSettings) -> Any:
    """The bundle's Explainer with the settings' layer and method. Raises CamError."""
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.trust.ood import feature_layer_of

    return Explainer(bundle.model, layer=settings.layer or bundle.target_layer,
                     method=settings.method, output=bundle.output,
                     feature_layer=feature_layer_of(bundle.manifest))


@dataclass
class Decoded:
    image: Any  # LoadedImage
    display: np.ndarray  # 8-bit display pixels (the overlay's background)
    batch: np.ndarray  # [1, h, w, c] model input


@dataclass
class Explained:
    values: np.ndarray  # [L] probabilities or scores, as shown
    maps: np.ndarray  # [L, h, w] normalised heatmaps
    has: np.ndarray  # [L] which maps had positive evidence
    layer: str
    method: str
    score: str
    features: np.ndarray | None = None  # [C] pooled features: the out-of-distribution check

    @property
    def layer_name(self) -> str:
        return self.layer

    def display_heatmap(self, index: int, label: int, size: tuple[int, int]) -> np.ndarray:
        """As `Explanation.display_heatmap` of a batch of one (index 0), so that the DICOM
        objects (dicom_cmd.after_image) are built exactly as for one image alone."""
        from gradcam_viewer.cam.heatmap import upsample_heatmap

        if index != 0:
            raise IndexError("an Explained holds one image")
        return upsample_heatmap(self.maps[label], size)


@dataclass
class Written:
    row: list[str]  # the image's predictions.csv row
    warning: str | None = None  # what the user reads about it (out of distribution)


class ExplainJob:
    """One model and one set of output settings; the stages are safe to call from threads.
    `dicom`: a dicom_cmd.DicomRun that also writes each image's DICOM objects (local runs)."""

    def __init__(self, bundle: Any, explainer: Any, settings: JobSettings,
                 ood_check: Any = None, dicom: Any = None):
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

    def explain(self, decoded: list[Decoded]) -> list[Explained]:
        result = self.explainer.explain(np.concatenate([d.batch for d in decoded]))
        maps, has = result.normalized()
        features = result.features
        return [Explained(self.bundle.values(result.probabilities[i]), maps[i], has[i],
                          result.layer_name, result.method, result.score,
                          None if features is None else features[i])
                for i in range(len(decoded))]

    def write(self, item: Planned, decoded: Decoded, explained: Explained) -> Written:
        """Overlays, JSON (and DICOM objects) of one image; returns its CSV row."""
        from gradcam_viewer.cam.heatmap import upsample_heatmap
        from gradcam_viewer.outputs.export import prediction_record, write_json, write_png_fast
        from gradcam_viewer.outputs.records import csv_row, source_id
        from gradcam_viewer.render import OverlayStyle, composite
        from gradcam_viewer.trust.ood import csv_flag

        started = time.perf_counter()
        s, bundle, image = self.settings, self.bundle, decoded.image
        values = explained.values
        source = source_id(image, item.rel, s.include_ids)
        ood = self.ood_check.record(explained.features)
        record = prediction_record(source, image, bundle, values, explained.layer,
                                   explained.method, explained.score, explained.has, ood=ood)
        item.folder.mkdir(parents=True, exist_ok=True)
        style = OverlayStyle(opacity=s.opacity, colormap=s.colormap)
        value_key = "Score" if bundle.output_kind == "scores" else "Probability"
        for k in self.wanted:
            heat = upsample_heatmap(explained.maps[k], image.size)
            rgb = composite(decoded.display, heat, style)
            write_png_fast(item.overlay_path(bundle.labels[k]), rgb,
                      {"Label": bundle.labels[k],
                       value_key: f"{values[k]:.4f}",
                       "Source": item.rel, "Frame": str(source.frame),
                       "Model": bundle.name, "Method": explained.method,
                       "OutOfDistribution": csv_flag(ood),
                       "Notice": bundle.manifest.get("disclaimer", "")},
                      s.overwrite)
        write_json(item.json_path, record, s.overwrite)
        if self.dicom is not None:
            self.dicom.after_image(item, image, decoded.display, explained, values, bundle,
                                   self.wanted, style, s.overwrite, ood)
        log.info("wrote %s in %.2f s", item.source.name, time.perf_counter() - started)
        warning = (f"warning: {item.rel}: unlike the images this model was checked on "
                   f"(distance percentile {ood['percentile']:.1f})" if ood["flagged"] else None)
        return Written(csv_row(source, values, s.include_ids, bundle.output_kind, ood), warning)


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
