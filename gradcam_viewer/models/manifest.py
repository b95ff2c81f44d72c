"""The model manifest: the JSON beside a Keras file that says what the model is and how to feed
it. Validation here is about the file itself, against `manifest.schema.json` (shipped as package
data); checks against the model are in bundle.py."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NotRequired, TypedDict, cast

from gradcam_viewer.models.errors import ModelLoadError
from gradcam_viewer.models.preprocessing import KINDS, Preprocessing

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
REQUIRED = tuple(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["required"])


class InputSpec(TypedDict):
    height: int
    width: int
    channels: int
    colour: NotRequired[str]  # "grey" or "rgb"


class OodCalibration(TypedDict):
    """The out-of-distribution calibration (`gradcam-viewer calibrate`): its sidecar file."""

    file: str
    sha256: str
    layer: str
    k: int
    threshold: float
    images: NotRequired[int]
    holdout: NotRequired[float]
    reference_features: NotRequired[int]
    method: NotRequired[str]


class OperatingPointEntry(TypedDict):
    threshold: float
    sensitivity: float
    specificity: float
    positives: int
    negatives: int
    threshold_ci: NotRequired[list[float]]


class OperatingPointsEntry(TypedDict):
    """The thresholds `evaluate --operating-points --write-manifest` set (see
    models/operating_points.py)."""

    rule: str
    cases: int
    date: str
    weights_sha256: str
    labels: dict[str, OperatingPointEntry]
    source: NotRequired[str]


class Manifest(TypedDict):
    """The manifest as manifest.schema.json describes it (the schema is the authority: a file
    is read only after it validates, so these types hold for every manifest read)."""

    name: str
    version: str
    labels: list[str]
    input: InputSpec
    preprocessing: Preprocessing
    target_layer: str
    output_activation: str
    trained_on: str
    metrics: dict[str, object]
    intended_use: str
    disclaimer: str
    weights_sha256: str | None  # None only in the default of a model without a manifest
    synthetic_demo: NotRequired[bool]
    resize: NotRequired[str]
    output: NotRequired[str]
    output_kind: NotRequired[str]
    training: NotRequired[dict[str, object]]
    weights_file: NotRequired[str]
    ood: NotRequired[OodCalibration]
    operating_points: NotRequired[OperatingPointsEntry]


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


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _field(path: Iterable[str | int]) -> str:
    """jsonschema's path (deque of keys and indices) as `input.height` or `labels[2]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def manifest_problems(data: object) -> list[str]:
    """Every schema violation as a sentence that names the field; [] when the manifest is valid."""
    problems = []
    for error in sorted(_validator().iter_errors(data), key=lambda e: (len(e.path), e.message)):
        where = _field(error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else error.message
            field = f"{where}.{missing}" if where else missing
            problems.append(f"lacks the field '{field}'")
        elif where == "preprocessing.kind":
            problems.append(f"names an unknown preprocessing '{error.instance}' "
                            f"(field 'preprocessing.kind'; known: {', '.join(KINDS)})")
        elif error.validator == "enum":
            options = ", ".join(json.dumps(v) for v in error.validator_value)
            problems.append(f"field '{where}' is {json.dumps(error.instance)}; expected one "
                            f"of {options}")
        elif error.validator in ("oneOf", "anyOf"):
            problems.append(f"field '{where}' has an invalid value {json.dumps(error.instance)}")
        else:
            problems.append(f"field '{where or '(top level)'}': {error.message}")
    return problems


def validate_manifest(data: object, name: str = "manifest") -> Manifest:
    """The manifest if it follows the schema, else a ModelLoadError naming every bad field."""
    problems = manifest_problems(data)
    if problems:
        shown = "; ".join(problems[:4]) + ("; ..." if len(problems) > 4 else "")
        raise ModelLoadError(f"The manifest '{name}' is not valid: {shown}.")
    return cast(Manifest, data)  # it follows the schema, which Manifest transcribes


def read_manifest(path: Path) -> Manifest:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"The manifest '{path.name}' cannot be read: {exc}.") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"The manifest '{path.name}' is not a JSON object.")
    return validate_manifest(data, path.name)


def write_manifest(path: Path, manifest: Manifest, overwrite: bool = True) -> Path:
    """Atomically (a temporary file renamed into place); the manifest is validated first."""
    from gradcam_viewer.outputs.safe_write import write_bytes_atomic

    validate_manifest(manifest, path.name)
    text = json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite)
