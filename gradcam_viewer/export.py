"""Predictions and overlays written to disk (CLI and GUI share it). No patient-identifying
field is written unless the caller passes `include_identifying=True`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from PIL import Image, PngImagePlugin

from gradcam_viewer.models.outputs import values_name, values_title
from gradcam_viewer.safe_write import write_atomic, write_bytes_atomic


def model_identity(bundle: Any) -> dict[str, Any]:
    return {"name": bundle.name, "version": str(bundle.manifest.get("version", "")),
            "sha256": bundle.manifest.get("weights_sha256"),
            "synthetic_demo": bundle.is_demo}


def prediction_record(image: Any, bundle: Any, probabilities: np.ndarray, layer: str,
                      method: str, score: str, include_identifying: bool = False) -> dict:
    """`probabilities` are the shown values (`bundle.values(raw)`); they are stored under
    "scores" instead when the model's outputs are not known to be probabilities."""
    kind = str(bundle.manifest.get("output_kind", "scores"))
    record = {
        "image": Path(image.path).name,
        "format": image.source_format,
        "frame": image.frame,
        values_name(kind): {lab: round(float(p), 6) for lab, p in zip(bundle.labels, probabilities)},
        "output_kind": kind,
        "output_activation": bundle.manifest.get("output_activation", "unknown"),
        "layer": layer,
        "method": method,
        "score": score,
        "model": model_identity(bundle),
        "disclaimer": bundle.manifest.get("disclaimer", ""),
    }
    if include_identifying:
        record["metadata"] = image.visible_metadata(include_identifying=True)
    return record


def write_json(path: Path, record: dict, overwrite: bool = False) -> Path:
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite)


def write_csv(path: Path, labels: list[str], rows: Iterable[tuple[str, np.ndarray]],
              overwrite: bool = False, kind: str = "probabilities") -> Path:
    """A row per image, a column per label, and a last column `values` saying what the numbers
    are: "probabilities" or "scores (not probabilities)" (`kind` is the output_kind)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["image", *labels, "values"])
    for name, probs in rows:
        writer.writerow([name, *(f"{float(p):.6f}" for p in probs), values_title(kind)])
    return write_bytes_atomic(path, buf.getvalue().encode("utf-8"), overwrite)


def write_png(path: Path, rgb: np.ndarray, text: dict[str, str] | None = None,
              overwrite: bool = False) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    return write_atomic(path, lambda tmp: Image.fromarray(rgb).save(tmp, format="PNG",
                                                                  pnginfo=info), overwrite)
