"""Localisation and discrimination measured on the user's own annotations (issue 13, part 3).

- labels.csv: one row per image (first column, or `Image` / `Image Index`: the file name), one
  0/1 column per label (the AI for Medicine course's train-small.csv layout); other columns
  (PatientId, ...) are ignored.
- boxes.csv: the NIH BBox_List_2017.csv layout: Image Index, Finding Label, x, y, w, h in the
  image's pixel coordinates.

Per label: AUROC (trapezoidal ROC, equal to the Mann-Whitney statistic) with a 95% percentile
bootstrap interval over images; with boxes, the pointing game (the map's maximum inside the
box), IoBB accuracy at T(IoBB) = 0.1 ... 0.9 as in Wang et al. 2017 (the map binarised at half
its maximum, a bounding box around each connected region, a box counts as found when one of
them has |B ∩ GT| / |B| >= T), and the mean IoU of the binarised map with the box.
numpy only (Pillow for the map upsampling); no TensorFlow, no Qt.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gradcam_viewer.cam.heatmap import normalize_heatmaps, upsample_heatmap

IOBB_THRESHOLDS = (0.1, 0.25, 0.5, 0.75, 0.9)
BINARY_THRESHOLD = 0.5
BOOTSTRAP = 1000
NAME_COLUMNS = ("Image", "Image Index", "image", "path", "filename")
# NIH names a finding differently in its label and box files
ALIASES = {"Infiltrate": "Infiltration"}
MAX_GRID = 256  # connected regions are found on a grid of at most this many pixels a side


class AnnotationError(ValueError):
    """A labels or boxes file that cannot be used; the message is for the user."""


# --- reading the annotations ---------------------------------------------------------------

def _csv_rows(path: Path) -> list[list[str]]:
    """The rows of a UTF-8 CSV (with or without BOM), or an AnnotationError naming it."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"cannot read '{path.name}': {exc}") from exc


def read_labels(path: Path, model_labels: list[str]) -> tuple[dict[str, np.ndarray],
                                                              list[str], list[str]]:
    """{image name: 0/1 per model label (-1 where the file has no column)}, the model labels
    found, and notes for the user."""
    rows = _csv_rows(path)
    if len(rows) < 2:
        raise AnnotationError(f"'{path.name}' has no rows under its header")
    header = [h.strip() for h in rows[0]]
    name_col = next((header.index(c) for c in NAME_COLUMNS if c in header), 0)
    found = [lab for lab in model_labels if lab in header]
    notes = []
    missing = [lab for lab in model_labels if lab not in header]
    if not found:
        raise AnnotationError(f"'{path.name}' has no column named like a model label "
                              f"({', '.join(model_labels)})")
    if missing:
        notes.append(f"'{path.name}' has no column for {', '.join(missing)}: no AUROC for "
                     "those labels")
    cols = [header.index(lab) if lab in header else -1 for lab in model_labels]
    table: dict[str, np.ndarray] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row or not row[name_col].strip():
            continue
        try:
            values = [float(row[c]) if c >= 0 else -1 for c in cols]  # "1" or "1.0"
        except (ValueError, IndexError):
            raise AnnotationError(f"'{path.name}' line {number}: the label columns must hold "
                                  "0 or 1") from None
        if any(v not in (0, 1, -1) for v in values):
            raise AnnotationError(f"'{path.name}' line {number}: the label columns must hold "
                                  "0 or 1")
        table[image_key(row[name_col])] = np.array(values, np.int8)
    return table, found, notes


def image_key(cell: str) -> str:
    """An annotation file's image cell as written ('00000001_000.png' or 'ST1/SE1/IM1'), with
    '/' separators and no leading './'."""
    return "/".join(part for part in cell.strip().replace("\\", "/").split("/")
                    if part not in ("", "."))


def match_images(rels: list[str], keys: set[str]) -> dict[str, str | None]:
    """Which annotation key names each input (by its path relative to the inputs' root).

    A key matches an input when it is that path or its trailing part ('SE1/IM1' for
    'ST1/SE1/IM1'); a bare file name also matches, but only when no other input has that name:
    in a CD or PACS export every series has its IM000001, and a label row must not be given to
    all of them. Raises AnnotationError naming the images a bare name would mix up."""
    by_name: dict[str, int] = {}
    for rel in rels:
        name = rel.rsplit("/", 1)[-1]
        by_name[name] = by_name.get(name, 0) + 1
    found: dict[str, str | None] = {}
    clashes = []
    for rel in rels:
        parts = rel.split("/")
        tails = ["/".join(parts[i:]) for i in range(len(parts))]  # longest first
        key = next((t for t in tails if t in keys), None)
        if key is not None and "/" not in key and by_name[key] > 1:
            clashes.append(rel)
            key = None
        found[rel] = key
    if clashes:
        raise AnnotationError(
            f"{len(clashes)} input images share their file name with another input (e.g. "
            f"'{clashes[0]}') and the annotations name them by file name only: give their "
            "paths relative to the folder given (e.g. 'ST1/SE1/IM000001')")
    return found


@dataclass(frozen=True)
class Box:
    image: str
    label: str
    x: float
    y: float
    w: float
    h: float


def read_boxes(path: Path, model_labels: list[str]) -> tuple[list[Box], list[str]]:
    """The boxes of model labels, and a note for each box of a label the model lacks."""
    rows = _csv_rows(path)
    if not rows or len(rows[0]) < 6 or "image" not in rows[0][0].lower() \
            or "label" not in rows[0][1].lower():
        raise AnnotationError(f"'{path.name}' is not in the NIH box layout (Image Index, "
                              "Finding Label, x, y, w, h)")
    boxes: list[Box] = []
    unknown: dict[str, list[str]] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row or not row[0].strip():
            continue
        try:
            x, y, w, h = (float(v) for v in row[2:6])
        except ValueError:
            raise AnnotationError(f"'{path.name}' line {number}: x, y, w, h must be "
                                  "numbers") from None
        if len(row) < 6 or w <= 0 or h <= 0:
            raise AnnotationError(f"'{path.name}' line {number}: a box needs x, y and a "
                                  "positive width and height")
        label = ALIASES.get(row[1].strip(), row[1].strip())
        if label not in model_labels:
            unknown.setdefault(label, []).append(Path(row[0].strip()).name)
            continue
        boxes.append(Box(image_key(row[0]), label, x, y, w, h))
    notes = [f"{len(names)} box(es) for '{label}', which is not a label of the model, were "
             f"skipped (e.g. {names[0]})" for label, names in sorted(unknown.items())]
    return boxes, notes


# --- discrimination ------------------------------------------------------------------------

def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties get their average rank (as scipy.stats.rankdata)."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.r_[first, len(x)])
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks = np.empty(len(x))
    ranks[order] = avg[group]
    return ranks


def roc_curve(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    scores = np.asarray(scores, np.float64)
    truth = np.asarray(truth).astype(bool)
    order = np.argsort(-scores, kind="mergesort")
    s, t = scores[order], truth[order]
    last = np.r_[s[1:] != s[:-1], True]  # the end of each group of tied scores
    tp = np.cumsum(t)[last]
    fp = np.cumsum(~t)[last]
    return (np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)])


def roc_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    truth = np.asarray(truth).astype(bool)
    if truth.all() or not truth.any():
        return float("nan")
    fpr, tpr = roc_curve(scores, truth)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def bootstrap_ci(scores: np.ndarray, truth: np.ndarray, n: int = BOOTSTRAP, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the AUROC over `n` resamples of the images (resamples with one
    class only are drawn again)."""
    scores, truth = np.asarray(scores, np.float64), np.asarray(truth).astype(bool)
    if truth.all() or not truth.any():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values: list[float] = []
    while len(values) < n:
        idx = rng.integers(0, len(scores), len(scores))
        t = truth[idx]
        if t.all() or not t.any():
            continue
        ranks = rankdata(scores[idx])
        pos = int(t.sum())
        values.append((ranks[t].sum() - pos * (pos + 1) / 2.0) / (pos * (len(t) - pos)))
    lo, hi = np.percentile(values, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


# --- localisation --------------------------------------------------------------------------

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


def box_mask(box: Box, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centres lie in the box."""
    h, w = shape
    ys, xs = np.arange(h) + 0.5, np.arange(w) + 0.5
    iy = (ys >= box.y) & (ys < box.y + box.h)
    ix = (xs >= box.x) & (xs < box.x + box.w)
    return iy[:, None] & ix[None, :]


def localise(raw_map: np.ndarray, box: Box, shape: tuple[int, int]) -> dict[str, float]:
    """Pointing-game hit, IoU of the binarised map, best IoBB of the map's regions."""
    if box.x < -1 or box.y < -1 or box.x + box.w > shape[1] + 1 or box.y + box.h > shape[0] + 1:
        raise AnnotationError(f"the '{box.label}' box (x {box.x:g}, y {box.y:g}, w {box.w:g}, "
                              f"h {box.h:g}) lies outside the {shape[1]}x{shape[0]} image: "
                              "boxes must be in this image's pixels (NIH's are for the "
                              "1024x1024 originals)")
    maps, has = normalize_heatmaps(np.asarray(raw_map)[None])
    if not has[0]:
        return {"hit": 0.0, "iou": 0.0, "iobb": 0.0}
    up = upsample_heatmap(maps[0], shape)
    truth = box_mask(box, shape)
    peak = np.unravel_index(int(np.argmax(up)), up.shape)
    hot = up >= BINARY_THRESHOLD
    union = np.logical_or(hot, truth).sum()
    iou = float(np.logical_and(hot, truth).sum() / union) if union else 0.0
    scale = max(1.0, max(shape) / MAX_GRID)  # regions on a coarser grid, boxes scaled back
    grid = (max(1, round(shape[0] / scale)), max(1, round(shape[1] / scale)))
    coarse = upsample_heatmap(maps[0], grid) >= BINARY_THRESHOLD
    sy, sx = shape[0] / grid[0], shape[1] / grid[1]
    best = 0.0
    for x0, y0, x1, y1 in connected_regions(coarse):
        bx0, by0, bx1, by1 = x0 * sx, y0 * sy, x1 * sx, y1 * sy
        ix = max(0.0, min(bx1, box.x + box.w) - max(bx0, box.x))
        iy = max(0.0, min(by1, box.y + box.h) - max(by0, box.y))
        best = max(best, ix * iy / ((bx1 - bx0) * (by1 - by0)))
    return {"hit": float(truth[peak]), "iou": iou, "iobb": best}


# --- the whole evaluation ------------------------------------------------------------------

@dataclass
class Evaluation:
    labels: list[str]
    scores: list[np.ndarray] = field(default_factory=list)  # per image, [L]
    truth: list[np.ndarray] = field(default_factory=list)  # per image, [L] 0/1/-1
    found: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # label -> boxes

    def add(self, values: np.ndarray, truth: np.ndarray) -> None:
        self.scores.append(np.asarray(values, np.float64))
        self.truth.append(np.asarray(truth))

    def add_box(self, label: str, result: dict[str, float]) -> None:
        self.found.setdefault(label, []).append(result)

    def table(self, n_boot: int = BOOTSTRAP, seed: int = 0) -> list[dict]:
        scores = np.array(self.scores) if self.scores else np.zeros((0, len(self.labels)))
        truth = np.array(self.truth) if self.truth else np.zeros((0, len(self.labels)))
        rows = []
        for k, label in enumerate(self.labels):
            known = truth[:, k] >= 0 if len(truth) else np.zeros(0, bool)
            s, t = scores[known, k], truth[known, k] == 1
            auc = roc_auc(s, t) if len(s) else float("nan")
            lo, hi = bootstrap_ci(s, t, n_boot, seed) if len(s) else (float("nan"),) * 2
            row = {"label": label, "images": int(known.sum()), "positives": int(t.sum()),
                   "auroc": auc, "auroc_ci_low": lo, "auroc_ci_high": hi}
            found = self.found.get(label, [])
            row["boxes"] = len(found)
            nan = float("nan")
            row["pointing_game"] = float(np.mean([f["hit"] for f in found])) if found else nan
            for thr in IOBB_THRESHOLDS:
                row[f"iobb_acc_{thr:g}"] = (float(np.mean([f["iobb"] >= thr for f in found]))
                                            if found else nan)
            row["mean_iou"] = float(np.mean([f["iou"] for f in found])) if found else nan
            rows.append(row)
        return rows

    def curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if not self.scores:
            return out
        scores, truth = np.array(self.scores), np.array(self.truth)
        for k, label in enumerate(self.labels):
            known = truth[:, k] >= 0
            t = truth[known, k] == 1
            if t.any() and not t.all():
                out[label] = roc_curve(scores[known, k], t)
        return out


COLUMNS = ("label", "images", "positives", "auroc", "auroc_ci_low", "auroc_ci_high", "boxes",
           "pointing_game", *(f"iobb_acc_{t:g}" for t in IOBB_THRESHOLDS), "mean_iou")


def table_csv(rows: list[dict]) -> str:
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row[c] if isinstance(row[c], (str, int)) else
                         ("" if np.isnan(row[c]) else f"{row[c]:.4f}") for c in COLUMNS])
    return buf.getvalue()
