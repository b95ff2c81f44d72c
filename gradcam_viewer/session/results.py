"""The model the window shows, and the cache that keeps explanations and decoded images within a
byte budget.
An explanation is `cam.result.ExplainResult`, the type every part of the program shares."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradcam_viewer.cam.heatmap import upsample_heatmap
from gradcam_viewer.cam.result import ExplainResult, JsonValue, ResultKey
from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.models.identity import ModelIdentity

DEFAULT_BUDGET_MB = 512
OVERLAY_MAX_SIDE = 1024  # heatmaps are drawn at most this large, then scaled by the view
DEMO_BANNER = "SYNTHETIC DEMO MODEL \u2014 NOT FOR DIAGNOSTIC USE"

MapKey = tuple[ResultKey, int, tuple[int, int]]  # (result, label, (height, width))
ImageKey = tuple[str, int]  # (path, frame)

__all__ = ["DEFAULT_BUDGET_MB", "DEMO_BANNER", "ExplainResult", "ImageKey", "JsonValue",
           "MapKey", "ModelInfo", "ResultCache", "ResultKey", "image_key", "overlay_size"]


@dataclass(frozen=True)
class ModelInfo:
    """What the GUI needs to know of the model the worker holds."""

    model_id: int
    name: str
    labels: list[str]
    manifest: dict[str, JsonValue]
    is_demo: bool
    notices: list[str]
    loader: str = ""  # how the model file was opened (the engine branch's ModelBundle.loader)

    @property
    def identity(self) -> ModelIdentity:
        """What the outputs record about this model (as `ModelBundle.identity`)."""
        return ModelIdentity.of(self.name, self.labels, self.manifest)


def overlay_size(image_size: tuple[int, int], limit: int = OVERLAY_MAX_SIDE) -> tuple[int, int]:
    """(height, width) to draw a heatmap at: the image size, shrunk to `limit` on its long side.

    A Grad-CAM map is a bilinear enlargement of a map a few cells wide, so drawing it at screen
    size and letting the view scale it shows the same picture at a fraction of the cost.
    """
    h, w = image_size
    scale = min(1.0, limit / max(h, w, 1))
    return max(1, round(h * scale)), max(1, round(w * scale))


class ResultCache:
    """Explanations per (image, frame, method, model), so switching labels, methods back or
    files back is free; decoded images per (image, frame), so stepping back or onto a file
    read ahead needs no decoding; and the upsampled maps last drawn. Everything counts against
    one byte budget. Upsampled maps (large, quickly remade) go first, then images (the largest),
    then results (small), least recently used first; the image on screen (`pinned`) and the map
    just asked for stay.
    """

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_MB << 20, max_results: int = 256,
                 max_maps: int = 16):
        self.budget = int(budget_bytes)
        self.max_results = max_results
        self.max_maps = max_maps
        self.pinned: ImageKey | None = None  # the image on screen: never evicted
        self._results: OrderedDict[ResultKey, ExplainResult] = OrderedDict()
        self._maps: OrderedDict[MapKey, np.ndarray] = OrderedDict()
        self._images: OrderedDict[ImageKey, LoadedImage] = OrderedDict()

    @property
    def nbytes(self) -> int:
        return (sum(r.nbytes for r in self._results.values())
                + sum(m.nbytes for m in self._maps.values())
                + sum(i.nbytes for i in self._images.values()))

    def __len__(self) -> int:
        return len(self._results)

    def get(self, key: ResultKey) -> ExplainResult | None:
        item = self._results.get(key)
        if item is not None:
            self._results.move_to_end(key)
        return item

    def put(self, result: ExplainResult) -> None:
        self._results[result.key] = result
        self._results.move_to_end(result.key)
        self._shrink()

    def image(self, path: str | Path, frame: int = 0) -> LoadedImage | None:
        key = (str(path), frame)
        found = self._images.get(key)
        if found is not None:
            self._images.move_to_end(key)
        return found

    def put_image(self, image: LoadedImage, pin: bool = False) -> bool:
        """Keep a decoded image (`pin`: it is the one on screen). False when the budget has no
        room for it beside the pinned one (it was not kept)."""
        key = image_key(image)
        if pin:
            self.pinned = key
        self._images[key] = image
        self._images.move_to_end(key)
        self._shrink()
        return key in self._images

    def display_map(self, result: ExplainResult, label: int, size: tuple[int, int]) -> np.ndarray:
        """The normalised map of `label` upsampled to `size` = (height, width), kept while the
        budget allows."""
        key: MapKey = (result.key, label, (int(size[0]), int(size[1])))
        found = self._maps.get(key)
        if found is None:
            found = upsample_heatmap(result.normalized[label], size)
            self._maps[key] = found
            self._shrink(keep=key)
        else:
            self._maps.move_to_end(key)
        return found

    def clear(self) -> None:
        self._results.clear()
        self._maps.clear()
        self._images.clear()
        self.pinned = None

    def _shrink(self, keep: MapKey | None = None) -> None:
        while len(self._results) > self.max_results:
            self._results.popitem(last=False)
        while len(self._maps) > self.max_maps:
            self._maps.popitem(last=False)
        used = self.nbytes
        while used > self.budget and self._maps:
            key = next(iter(self._maps))
            if key == keep and len(self._maps) == 1:
                break  # the map just asked for is returned even when it alone is over budget
            used -= self._maps.pop(key).nbytes
        for image in [k for k in self._images if k != self.pinned]:
            if used <= self.budget:
                break
            used -= self._images.pop(image).nbytes
        while used > self.budget and len(self._results) > 1:
            used -= self._results.popitem(last=False)[1].nbytes


def image_key(image: LoadedImage) -> ImageKey:
    return str(image.path), image.frame
