"""Is this image like the images the model was checked on? Deep nearest neighbours (Sun et al.,
ICML 2022) on the target layer's globally pooled features.

Features are L2-normalised; an image's score is the Euclidean distance to its k-th nearest
reference feature (k = 50, fewer for small reference sets). The threshold is the 95th percentile
of the scores of held-out reference images (the FPR95 convention: 5% of in-distribution images
are flagged), and the percentile shown is where a score falls among those held-out scores.

The reference features (a float16 subsample) and the held-out scores live in a sidecar file
beside the manifest (`<model>.ood.npz`), named and hashed in the manifest's "ood" entry. numpy
only: no TensorFlow, no Qt.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_K = 50
MAX_REFERENCE = 1000  # reference features kept in the sidecar (a random subsample)
FPR_PERCENTILE = 95.0
SIDECAR_SUFFIX = ".ood.npz"
NOT_CALIBRATED = "not calibrated"


class CalibrationError(ValueError):
    """Too few images, or a sidecar that cannot be used; the message is for the user."""


def l2_normalise(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, np.float32)
    norms = np.linalg.norm(f, axis=-1, keepdims=True)
    return f / np.maximum(norms, 1e-12)


def knn_distances(queries: np.ndarray, reference: np.ndarray, k: int,
                  reference_sq: np.ndarray | None = None) -> np.ndarray:
    """Distance of each (normalised) query to its k-th nearest (normalised) reference row
    (`reference_sq`: the rows' squared norms, when already known)."""
    q = l2_normalise(queries)
    r = np.asarray(reference, np.float32)
    r_sq = np.sum(r * r, axis=1) if reference_sq is None else reference_sq
    # |q - r|^2 = |q|^2 + |r|^2 - 2 q.r; rows of r are unit length up to float16 rounding
    sq = np.sum(q * q, axis=1)[:, None] + r_sq[None, :] - 2.0 * q @ r.T
    dist = np.sqrt(np.maximum(sq, 0.0))
    k = min(k, r.shape[0])
    return np.partition(dist, k - 1, axis=1)[:, k - 1]


def choose_k(n_reference: int) -> int:
    """k = 50, or a fifth of a small reference set (at least 1)."""
    return max(1, min(DEFAULT_K, n_reference // 5))


@dataclass(frozen=True)
class OodReference:
    features: np.ndarray  # [M, C] float16, L2-normalised reference features
    holdout_scores: np.ndarray  # sorted scores of the held-out reference images
    k: int
    threshold: float

    @property
    def dimension(self) -> int:
        return int(self.features.shape[1])

    @cached_property
    def _reference32(self) -> tuple[np.ndarray, np.ndarray]:
        r = self.features.astype(np.float32)
        return r, np.sum(r * r, axis=1)

    def scores(self, features: np.ndarray) -> np.ndarray:
        r, r_sq = self._reference32
        return knn_distances(np.atleast_2d(features), r, self.k, r_sq)

    def percentile(self, score: float) -> float:
        """Share (in %) of held-out reference scores at or below `score`."""
        held = self.holdout_scores
        return float(100.0 * np.searchsorted(held, score, side="right") / max(len(held), 1))

    def assess(self, features: np.ndarray) -> list[dict[str, Any]]:
        """One {"score", "percentile", "flagged"} per row of `features`."""
        return [{"score": round(float(s), 6), "percentile": round(self.percentile(s), 1),
                 "flagged": bool(s > self.threshold)} for s in self.scores(features)]

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, features=self.features.astype(np.float16),
                            holdout_scores=self.holdout_scores.astype(np.float32),
                            k=np.int32(self.k), threshold=np.float64(self.threshold))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> OodReference:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            features = z["features"].astype(np.float16)
            held = np.sort(z["holdout_scores"].astype(np.float32))
            k, threshold = int(z["k"]), float(z["threshold"])
        if features.ndim != 2 or features.shape[0] < 1 or not 1 <= k <= features.shape[0]:
            raise CalibrationError("the calibration file holds no usable reference features")
        return cls(features, held, k, threshold)


def calibrate_features(features: np.ndarray, holdout: float = 0.2, seed: int = 0,
                       k: int | None = None, max_reference: int = MAX_REFERENCE) -> OodReference:
    """Split the features of in-distribution images into reference and held-out parts; the
    threshold is the 95th percentile of the held-out scores."""
    feats = np.asarray(features, np.float32)
    n = len(feats)
    if not 0.0 < holdout < 1.0:
        raise CalibrationError(f"--holdout must be between 0 and 1 (got {holdout})")
    n_hold = int(round(n * holdout))
    if n < 10 or n_hold < 2 or n - n_hold < 5:
        raise CalibrationError(f"{n} images are too few to calibrate: at least 10 are needed "
                               "(a few hundred give a stable threshold)")
    order = np.random.default_rng(seed).permutation(n)
    held, ref = feats[order[:n_hold]], feats[order[n_hold:]]
    if len(ref) > max_reference:
        ref = ref[:max_reference]  # already in random order: a random subsample
    ref16 = l2_normalise(ref).astype(np.float16)
    k = k or choose_k(len(ref16))
    scores = np.sort(knn_distances(held, ref16, k))
    threshold = float(np.percentile(scores, FPR_PERCENTILE))
    return OodReference(ref16, scores.astype(np.float32), k, threshold)


def sidecar_path(model_path: Path) -> Path:
    """`chest.v1.ood.npz` beside `chest.v1.keras` (like its manifest `chest.v1.json`): two
    models in one folder must not share a sidecar."""
    return model_path.with_suffix(SIDECAR_SUFFIX)


def manifest_entry(reference: OodReference, sidecar: Path, digest: str, layer: str,
                   images: int, holdout: float) -> dict[str, Any]:
    """What the manifest says about the calibration (the sidecar is checked against it)."""
    return {"file": sidecar.name, "sha256": digest, "layer": layer, "k": reference.k,
            "threshold": round(reference.threshold, 6), "images": int(images),
            "holdout": holdout, "reference_features": len(reference.features),
            "method": "deep k-NN (Sun et al. 2022) on the L2-normalised globally pooled "
                      "features of 'layer', threshold at the 95th percentile of held-out "
                      "scores"}


def reference_for(manifest: dict[str, Any], model_path: Path | None,
                  layer: str) -> tuple[OodReference | None, str]:
    """The model's calibration for features pooled at `layer` (the explainer's
    `feature_layer`), or None and why not ("not calibrated", or what is wrong)."""
    from gradcam_viewer.models.manifest import sha256_of

    entry = manifest.get("ood")
    if not isinstance(entry, dict) or model_path is None:
        return None, NOT_CALIBRATED
    path = Path(model_path).with_name(str(entry.get("file", "")))
    if not entry.get("file") or not path.is_file():
        return None, f"{NOT_CALIBRATED} (the calibration file '{entry.get('file')}' is missing)"
    if sha256_of(path) != entry.get("sha256"):
        return None, (f"{NOT_CALIBRATED} (the calibration file '{path.name}' does not match "
                      "the SHA-256 in the manifest)")
    if entry.get("layer") and entry["layer"] != layer:
        return None, (f"{NOT_CALIBRATED} for layer '{layer}' (calibrated at "
                      f"'{entry['layer']}')")
    try:
        reference = OodReference.from_bytes(path.read_bytes())
    except (OSError, ValueError, KeyError, CalibrationError) as exc:
        return None, f"{NOT_CALIBRATED} (the calibration file cannot be read: {exc})"
    return reference, ""


def not_calibrated_record() -> dict[str, Any]:
    """The JSON "ood" entry of a model without a usable calibration (same keys, no values)."""
    return {"score": None, "percentile": None, "flagged": None, "calibrated": False}


def banner_text(assessment: dict[str, Any]) -> str:
    return ("Unlike the images this model was checked on: its outputs may not mean anything "
            f"here (distance percentile {assessment['percentile']:.1f})")


def store_calibration(model_path: Path, reference: OodReference, layer: str, images: int,
                      holdout: float) -> Path:
    """Write the sidecar beside the model and name and hash it in the manifest file (which
    must exist). The model file itself is not touched."""
    import hashlib
    import json

    from gradcam_viewer.models.manifest import manifest_path_for, write_manifest
    from gradcam_viewer.outputs.safe_write import write_bytes_atomic

    manifest_file = manifest_path_for(Path(model_path))
    if manifest_file is None:
        raise CalibrationError(f"'{Path(model_path).name}' has no manifest; write one first "
                               "(gradcam-viewer manifest MODEL ...)")
    data = reference.to_bytes()
    sidecar = sidecar_path(Path(model_path))
    write_bytes_atomic(sidecar, data, overwrite=True)
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    manifest["ood"] = manifest_entry(reference, sidecar, hashlib.sha256(data).hexdigest(),
                                     layer, images, holdout)
    write_manifest(manifest_file, manifest)
    return sidecar


def feature_layer_of(manifest: Mapping[str, object]) -> str | None:
    """The layer the calibration pooled (None: the target layer, or no calibration)."""
    entry = manifest.get("ood")
    return str(entry["layer"]) if isinstance(entry, dict) and entry.get("layer") else None


@dataclass(frozen=True)
class OodCheck:
    """What the CLI and the window ask per image: the "ood" record, or "not calibrated"."""

    reference: OodReference | None
    status: str = NOT_CALIBRATED  # why there is no reference ("" when there is one)

    @property
    def calibrated(self) -> bool:
        return self.reference is not None

    def record(self, features: np.ndarray | None) -> dict[str, Any]:
        if self.reference is None or features is None:
            return not_calibrated_record()
        row = np.asarray(features, np.float32).reshape(-1)
        if row.shape[0] != self.reference.dimension:
            return not_calibrated_record()
        return {**self.reference.assess(row[None])[0], "calibrated": True}


def check_for(bundle: Any, explainer: Any) -> OodCheck:
    """The calibration of `bundle` for the features `explainer` pools, or why there is none."""
    reference, status = reference_for(bundle.manifest, bundle.path, explainer.feature_layer)
    channels = explainer.feature_channels
    if reference is not None and channels not in (None, reference.dimension):
        return OodCheck(None, f"{NOT_CALIBRATED} (the calibration has {reference.dimension} "
                              f"features, layer '{explainer.feature_layer}' has {channels})")
    return OodCheck(reference, status)


def csv_flag(record: dict[str, Any] | None) -> str:
    """The `ood_flagged` CSV cell: true, false, or "not calibrated"."""
    if not record or record.get("flagged") is None:
        return NOT_CALIBRATED
    return "true" if record["flagged"] else "false"


def report_flag(record: dict[str, Any] | None) -> bool | None:
    """The flag the DICOM report carries: None when the model is not calibrated."""
    return bool(record["flagged"]) if record and record.get("calibrated") else None
