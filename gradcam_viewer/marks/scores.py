"""How well a heatmap points at what was marked: the one implementation the viewer's live score
and `gradcam-viewer evaluate` share.

Inputs: the finding's map normalised to [0, 1] at the engine's size (`ExplainResult.normalized`
or `normalize_heatmaps`), a boolean mask of the marked pixels at the image's size (a mark's, or
the union of a finding's marks: `ImageMarks.mask_of`), and the threshold that binarises the map.
The map is upsampled to the image as the viewer draws it (`upsample_heatmap`).

- pointing game (`hit`): 1 when the map's maximum (its first pixel in row order, if tied) lies
  in the marks, else 0 (Zhang et al. 2016);
- energy-based pointing game (`energy`): the share of the map's total inside the marks,
  sum(map[marks]) / sum(map) (Wang et al. 2020, Score-CAM); 0 .. 1, the map's area near the
  marks counts, not only its peak;
- IoU: |map >= t AND marks| / |map >= t OR marks|;
- IoBB (Wang et al. 2017, ChestX-ray8): the map binarised at t, a bounding box around each of its
  4-connected regions, and the best |box AND marks| / |box| over them. Regions are found on a
  grid of at most `MAX_GRID` pixels a side (the map is smooth) and their boxes scaled back.

`evaluate` uses t = 0.5 (`BINARY_THRESHOLD`); the viewer uses the Heatmap box's threshold.
numpy and Pillow only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from gradcam_viewer.cam.heatmap import upsample_heatmap

BINARY_THRESHOLD = 0.5  # evaluate's, as in Wang et al. 2017: half the map's maximum
MAX_GRID = 256  # connected regions are found on a grid of at most this many pixels a side


@dataclass(frozen=True)
class Localisation:
    hit: float  # pointing game, 0 or 1
    energy: float  # energy-based pointing game, 0 .. 1
    iou: float
    iobb: float
    threshold: float = BINARY_THRESHOLD

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def localise(normalized: np.ndarray, truth: np.ndarray, threshold: float = BINARY_THRESHOLD,
             upsampled: np.ndarray | None = None) -> Localisation:
    """The four figures of a map against a mask (module docstring). `upsampled`: the map at the
    mask's size if the caller has it already (the viewer's cache), else it is made here."""
    truth = np.asarray(truth, bool)
    shape = (int(truth.shape[0]), int(truth.shape[1]))
    small = np.asarray(normalized, np.float32)
    if not small.size or not float(small.max()) > 0:
        return Localisation(0.0, 0.0, 0.0, 0.0, threshold)  # no positive evidence: no map
    up = upsampled if upsampled is not None else upsample_heatmap(small, shape)
    peak = np.unravel_index(int(np.argmax(up)), up.shape)
    total = float(up.sum(dtype=np.float64))
    energy = float(up[truth].sum(dtype=np.float64)) / total if total > 0 else 0.0
    hot = up >= threshold
    union = int(np.count_nonzero(hot | truth))
    iou = int(np.count_nonzero(hot & truth)) / union if union else 0.0
    return Localisation(float(truth[peak]), energy, iou, best_iobb(small, truth, threshold),
                        threshold)


def best_iobb(normalized: np.ndarray, truth: np.ndarray, threshold: float) -> float:
    """The best |B AND marks| / |B| over the bounding boxes B of the binarised map's regions."""
    h, w = truth.shape
    scale = max(1.0, max(h, w) / MAX_GRID)  # regions on a coarser grid, boxes scaled back
    grid = (max(1, round(h / scale)), max(1, round(w / scale)))
    coarse = upsample_heatmap(normalized, grid) >= threshold
    sy, sx = h / grid[0], w / grid[1]
    best = 0.0
    for x0, y0, x1, y1 in connected_regions(coarse):
        c0, c1 = round(x0 * sx), max(round(x0 * sx) + 1, round(x1 * sx))
        r0, r1 = round(y0 * sy), max(round(y0 * sy) + 1, round(y1 * sy))
        c1, r1 = min(c1, w), min(r1, h)
        inside = np.count_nonzero(truth[r0:r1, c0:c1])
        best = max(best, inside / ((r1 - r0) * (c1 - c0)))
    return best


def connected_regions(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x0, y0, x1, y1; exclusive ends) of the 4-connected regions of `mask`."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    labels = np.where(mask, np.arange(h * w).reshape(h, w) + 1, 0)
    big = h * w + 1
    while True:  # every pixel takes the smallest label among itself and its neighbours
        cur = np.where(mask, labels, big)
        m = cur.copy()
        m[1:] = np.minimum(m[1:], cur[:-1])
        m[:-1] = np.minimum(m[:-1], cur[1:])
        m[:, 1:] = np.minimum(m[:, 1:], cur[:, :-1])
        m[:, :-1] = np.minimum(m[:, :-1], cur[:, 1:])
        new = np.where(mask, m, 0)
        if np.array_equal(new, labels):
            break
        labels = new
    boxes = []
    for value in np.unique(labels[mask]):
        ys, xs = np.nonzero(labels == value)
        boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
    return boxes
