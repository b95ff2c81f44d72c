"""What the engine's work becomes: `ExplainResult`, one image's explanation, the one type the
window, the batch writer, the exports and the DICOM objects share; and `Explanation`, the
engine's output for a batch (one forward pass), which only splits into `ExplainResult`s.

numpy only: the GUI thread handles results without importing TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np

from gradcam_viewer.cam.heatmap import normalize_heatmaps, upsample_heatmap

ResultKey = tuple[str, int, str, int]  # (path, frame (0-based), method, model id)
# a manifest or an out-of-distribution record, as JSON reads it
JsonValue: TypeAlias = "str | int | float | bool | None | list[JsonValue] | dict[str, JsonValue]"


@dataclass(frozen=True, eq=False)
class ExplainResult:
    """All labels' maps and values for one image from one engine call, at the engine's size.

    `probabilities` are the numbers as shown: the model's outputs through its activation, or
    raw scores when the model's output kind says nothing makes them probabilities
    (`ModelIdentity.output_kind` tells which)."""

    key: ResultKey
    probabilities: np.ndarray  # [L]
    heatmaps: np.ndarray  # [L, h, w] raw, after ReLU
    layer: str
    method: str
    score: str  # "logit" (pre-activation) or "output" (nothing to peel off)
    seconds: float = 0.0
    ood: dict[str, JsonValue] | None = None  # the out-of-distribution record (trust.ood)
    features: np.ndarray | None = None  # [C] pooled features the out-of-distribution check reads
    normalized: np.ndarray = field(init=False, repr=False)  # [L, h, w] each map over its maximum
    has_evidence: np.ndarray = field(init=False, repr=False)  # [L] maps with positive evidence

    def __post_init__(self) -> None:
        normalized, has = normalize_heatmaps(self.heatmaps)
        object.__setattr__(self, "normalized", normalized)
        object.__setattr__(self, "has_evidence", has)

    @property
    def nbytes(self) -> int:
        return int(self.probabilities.nbytes + self.heatmaps.nbytes + self.normalized.nbytes
                   + self.has_evidence.nbytes)

    def display_heatmap(self, label: int, size: tuple[int, int]) -> np.ndarray:
        """The normalised map of `label` upsampled to `size` = (height, width) of the image."""
        return upsample_heatmap(self.normalized[label], size)


@dataclass(frozen=True, eq=False)
class Explanation:
    """The engine's output for a batch: raw scores and heatmaps (after ReLU, at the target
    layer's resolution). `result(i, ...)` is image i as every consumer takes it."""

    probabilities: np.ndarray  # [N, L] the model's outputs
    heatmaps: np.ndarray  # [N, L, h, w]
    layer_name: str
    method: str
    score: str  # "logit" (pre-activation) or "output" (nothing to peel off)
    # The feature layer's activations (default: the target layer's) averaged over height and
    # width, [N, C], from the same pass: the out-of-distribution features (trust/ood.py).
    features: np.ndarray | None = None

    def normalized(self) -> tuple[np.ndarray, np.ndarray]:
        """Maps divided by their maximum, and which maps had any positive evidence."""
        return normalize_heatmaps(self.heatmaps)

    def display_heatmap(self, index: int, label: int, size: tuple[int, int]) -> np.ndarray:
        """One normalised map upsampled to `size` = (height, width) of the original image."""
        maps, _ = self.normalized()
        return upsample_heatmap(maps[index, label], size)

    def result(self, index: int, key: ResultKey, values: np.ndarray,
               ood: dict[str, JsonValue] | None = None, seconds: float = 0.0) -> ExplainResult:
        """Image `index` of the batch; `values`: its outputs as shown (`ModelBundle.values`)."""
        return ExplainResult(key=key, probabilities=np.asarray(values),
                             heatmaps=self.heatmaps[index], layer=self.layer_name,
                             method=self.method, score=self.score, seconds=seconds, ood=ood,
                             features=None if self.features is None else self.features[index])
