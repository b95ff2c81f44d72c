"""What the window shows, as plain data (no Qt): the open image, its explanations and the
files to step through. The Qt widgets render this state; tests can inspect it directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradcam_viewer.cam.heatmap import normalize_heatmaps, upsample_heatmap


@dataclass(frozen=True)
class ModelInfo:
    """What the GUI needs to know of the model the worker holds."""

    model_id: int
    name: str
    labels: list[str]
    manifest: dict[str, Any]
    is_demo: bool
    notices: list[str]
    target_layer: str
    loader: str = ""  # how the model file was opened (ModelBundle.loader)


@dataclass
class ExplainResult:
    """All labels' maps for one image from one engine call."""

    key: tuple  # (path, frame, method, model_id)
    probabilities: np.ndarray  # [L]
    heatmaps: np.ndarray  # [L, h, w] raw, after ReLU
    layer: str
    method: str
    score: str
    seconds: float
    ood: dict[str, Any] | None = None  # the out-of-distribution record (trust/ood.py)
    normalized: np.ndarray = field(init=False)
    has_evidence: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.normalized, self.has_evidence = normalize_heatmaps(self.heatmaps)
        self._upsampled: dict[tuple[int, tuple[int, int]], np.ndarray] = {}

    def display_map(self, label: int, size: tuple[int, int]) -> np.ndarray:
        """Normalised map of `label` at the image size; the last few are kept."""
        key = (label, size)
        if key not in self._upsampled:
            if len(self._upsampled) >= 4:
                self._upsampled.pop(next(iter(self._upsampled)))
            self._upsampled[key] = upsample_heatmap(self.normalized[label], size)
        return self._upsampled[key]


class ResultCache:
    """Explanations per (image, frame, method, model): switching labels or styles is free."""

    def __init__(self, capacity: int = 32):
        self.capacity = capacity
        self._items: dict[tuple, ExplainResult] = {}

    def get(self, key: tuple) -> ExplainResult | None:
        item = self._items.pop(key, None)
        if item is not None:
            self._items[key] = item
        return item

    def put(self, result: ExplainResult) -> None:
        self._items.pop(result.key, None)
        self._items[result.key] = result
        while len(self._items) > self.capacity:
            self._items.pop(next(iter(self._items)))

    def clear(self) -> None:
        self._items.clear()


class FileList:
    """The files opened together (several files or a folder), for Page Up / Page Down."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.index = -1

    def set(self, paths: list[Path], current: int = 0) -> None:
        self.paths = list(paths)
        self.index = current if self.paths else -1

    def step(self, delta: int) -> Path | None:
        if not self.paths:
            return None
        new = self.index + delta
        if not 0 <= new < len(self.paths):
            return None
        self.index = new
        return self.paths[new]

    @property
    def current(self) -> Path | None:
        return self.paths[self.index] if 0 <= self.index < len(self.paths) else None

    def position(self) -> str:
        return f"{self.index + 1} / {len(self.paths)}" if len(self.paths) > 1 else ""

