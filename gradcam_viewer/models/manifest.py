"""The model manifest: the JSON beside a Keras file that says what the model is and how to feed
it. Validation here is about the file itself; checks against the model are in bundle.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gradcam_viewer.models.errors import ModelLoadError
from gradcam_viewer.models.preprocessing import KINDS

REQUIRED = ("name", "version", "labels", "input", "preprocessing", "target_layer",
            "output_activation", "trained_on", "metrics", "intended_use", "disclaimer",
            "weights_sha256")


def sha256_of(path: Path) -> str:
    """Of the file; for a SavedModel folder, of every file's relative path and bytes."""
    digest = hashlib.sha256()
    files = sorted(q for q in path.rglob("*") if q.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def manifest_path_for(model_path: Path) -> Path | None:
    """`model.json` beside `model.keras`, else `manifest.json` in the same folder."""
    for candidate in (model_path.with_suffix(".json"),
                      model_path.with_name(model_path.name.split(".")[0] + ".json"),
                      model_path.parent / "manifest.json"):
        if candidate.is_file():
            return candidate
    return None


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"The manifest '{path.name}' cannot be read: {exc}.") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"The manifest '{path.name}' is not a JSON object.")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ModelLoadError(f"The manifest '{path.name}' lacks: {', '.join(missing)}.")
    labels = data["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelLoadError(f"The manifest '{path.name}' must list the label names.")
    output = data.get("output")  # optional: the output holding the scores, for several
    if output is not None and not (isinstance(output, str) and output):
        raise ModelLoadError(f"The manifest '{path.name}' field 'output' must name one of the "
                             "model's outputs.")
    kind = data["preprocessing"].get("kind") if isinstance(data["preprocessing"], dict) else None
    if kind not in KINDS:
        raise ModelLoadError(f"The manifest '{path.name}' names an unknown preprocessing "
                             f"'{kind}' (known: {', '.join(KINDS)}).")
    return data


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
