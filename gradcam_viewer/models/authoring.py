"""Writing a manifest for a model that has none: the CLI `manifest` command and the GUI set-up
dialog share this, so both write the same file (validated, atomic, with the model's SHA-256).
No Qt, no TensorFlow: the caller passes what it read from the model (see suggest.py)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from gradcam_viewer.models.errors import ModelLoadError
from gradcam_viewer.models.manifest import Manifest, validate_manifest, write_manifest
from gradcam_viewer.models.outputs import ACTIVATIONS
from gradcam_viewer.models.preprocessing import ALIASES, KINDS, Preprocessing

PRESETS = tuple(k for k in KINDS if k not in ALIASES)  # old names are read, not offered


class SetupError(ValueError):
    """A set-up choice that cannot work; the message is for the user."""


def split_labels(text: str) -> list[str]:
    """'A, B,C' -> ['A', 'B', 'C'] (a comma list as typed on the command line or in the GUI)."""
    return [x.strip() for x in text.split(",") if x.strip()]


def labels_from_file(path: str | Path) -> list[str]:
    """Label names from a text file (one per line) or a CSV file (its header row)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"The labels file '{p.name}' cannot be read "
                         f"({getattr(exc, 'strerror', None) or type(exc).__name__}).") from exc
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise SetupError(f"The labels file '{p.name}' is empty.")
    if p.suffix.lower() in (".csv", ".tsv") or (len(lines) >= 1 and "," in lines[0]):
        dialect = "excel-tab" if p.suffix.lower() == ".tsv" else "excel"
        header = next(csv.reader(io.StringIO(lines[0]), dialect=dialect))
        labels = [h.strip() for h in header if h.strip()]
    else:
        labels = lines
    return labels


def parse_size(text: str) -> tuple[int, int]:
    """'320x320' (or '320X256', '320,256') -> (height, width)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×,]\s*(\d+)\s*", text or "")
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise SetupError(f"'{text}' is not a size; write it as HEIGHTxWIDTH, e.g. 320x320.")
    return int(m.group(1)), int(m.group(2))


def manifest_path_beside(model_path: Path) -> Path:
    """`model.json` next to `model.keras` (the first place the loader looks)."""
    return Path(model_path).with_suffix(".json")


def build_manifest(*, model_path: Path, sha256: str, labels: list[str], preset: str,
                   n_outputs: int, model_size: tuple[int | None, int | None], channels: int,
                   final_activation: str, activation: str | None = None,
                   size: tuple[int, int] | None = None, layer: str = "auto",
                   name: str | None = None, colour: str = "grey",
                   intended_use: str | None = None, mean: float | list[float] | None = None,
                   std: float | list[float] | None = None,
                   output: str | None = None) -> Manifest:
    """The manifest for these choices, checked against what the model says; SetupError if not."""
    labels = [str(x).strip() for x in labels if str(x).strip()]
    if len(labels) != n_outputs:
        raise SetupError(f"The model has {n_outputs} outputs but {len(labels)} label names "
                         f"were given ({', '.join(labels) or 'none'}).")
    if len(set(labels)) != len(labels):
        raise SetupError("Each label name must be different.")
    if preset not in PRESETS:
        raise SetupError(f"Unknown preprocessing '{preset}'; choose one of {', '.join(PRESETS)}.")
    h, w = model_size
    if h is None or w is None:
        if size is None:
            raise SetupError("The model accepts any input size: give the size it was trained "
                             "at (HEIGHTxWIDTH, e.g. 320x320).")
        h, w = h or size[0], w or size[1]
    elif size is not None and tuple(size) != (h, w):
        raise SetupError(f"The model's input is {h}x{w}, not {size[0]}x{size[1]}.")
    if final_activation in ACTIVATIONS:
        if activation and activation != final_activation:
            raise SetupError(f"The model already ends in a {final_activation}: its outputs are "
                             f"probabilities, so no {activation} is applied to them.")
        kind, act = "probabilities", final_activation
    elif activation in ACTIVATIONS:
        kind, act = "logits", activation
    elif activation:
        raise SetupError(f"Unknown activation '{activation}'; choose sigmoid or softmax.")
    else:
        kind, act = "scores", "none" if final_activation == "linear" else "unknown"
    prep: Preprocessing = {"kind": preset}
    if preset == "fixed":
        if mean is None or std is None:
            raise SetupError("The 'fixed' preprocessing needs a mean and a std.")
        prep["mean"], prep["std"] = mean, std
    manifest: Manifest = {
        "name": name or Path(model_path).stem,
        "version": Path(model_path).name,
        "labels": labels,
        "input": {"height": int(h), "width": int(w), "channels": int(channels),
                  "colour": colour},
        "preprocessing": prep,
        "resize": "bilinear",
        "target_layer": layer or "auto",
        "output_kind": kind,
        "output_activation": act,
        "trained_on": "not stated (manifest written with gradcam-viewer's set-up)",
        "metrics": {},
        "intended_use": intended_use or "not stated",
        "disclaimer": "Research model - not for diagnostic use.",
        "weights_file": Path(model_path).name,
        "weights_sha256": sha256,
    }
    if output:
        manifest["output"] = output
    try:
        return validate_manifest(manifest, manifest_path_beside(Path(model_path)).name)
    except ModelLoadError as exc:
        raise SetupError(str(exc)) from exc


def write_beside(model_path: Path, manifest: Manifest, overwrite: bool = False) -> Path:
    """Atomic write of `model.json`; OutputExistsError when it exists and not `overwrite`."""
    return write_manifest(manifest_path_beside(Path(model_path)), manifest, overwrite)
