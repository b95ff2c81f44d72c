"""Localisation and discrimination measured on the user's own annotations.

- labels.csv: one row per image (first column, or `Image` / `Image Index`: the file name), one
  0/1 column per label (the AI for Medicine course's train-small.csv layout); other columns
  (PatientId, ...) are ignored.
- boxes.csv: the NIH BBox_List_2017.csv layout: Image Index, Finding Label, x, y, w, h in the
  image's pixel coordinates.
- marks: the shapes of a radiologist's marks (marks/shapes.py), from DICOM SR reports or the
  viewer's store (trust/marks_truth.py); an NIH box is a rectangle mark.

Per label: AUROC (trapezoidal ROC, equal to the Mann-Whitney statistic) with a 95% percentile
bootstrap interval over images; with marks or boxes, per marked case (an image with marks of
that finding, the union of its shapes, as the viewer's live score takes them and as the
pointing game of Zhang et al. counts a hit in any instance): the pointing game (the map's
maximum inside the marks), the energy-based pointing game (the share of the map inside them),
IoBB accuracy at T(IoBB) = 0.1 ... 0.9 as in Wang et al. 2017 (the map binarised at half its
maximum, a bounding box around each connected region, a case counts as found when one of them
has |B ∩ GT| / |B| >= T), and the mean IoU of the binarised map with the marks:
marks/scores.py, the functions the viewer's live score uses. Each localisation figure has a
95% percentile bootstrap interval over the marked cases.
numpy only (Pillow for the map upsampling); no TensorFlow, no Qt.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.cam.heatmap import normalize_heatmaps
from gradcam_viewer.marks.scores import (
    BINARY_THRESHOLD,
    connected_regions as connected_regions,
    localise as localise_mask,
)
from gradcam_viewer.marks.shapes import Mark

if TYPE_CHECKING:
    from collections.abc import Sequence

IOBB_THRESHOLDS = (0.1, 0.25, 0.5, 0.75, 0.9)
BOOTSTRAP = 1000
NAME_COLUMNS = ("Image", "Image Index", "image", "path", "filename")
# NIH names a finding differently in its label and box files
ALIASES = {"Infiltrate": "Infiltration"}


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


def mean_ci(values: Sequence[float], n: int = BOOTSTRAP, seed: int = 0,
            level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean over `n` resamples of the cases (nan when none)."""
    x = np.asarray(values, np.float64)
    if not len(x):
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(x), (n, len(x)))
    means = x[idx].mean(axis=1)
    lo, hi = np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


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

def localise(raw_map: np.ndarray, box: Box, shape: tuple[int, int]) -> dict[str, float]:
    """Pointing game, energy-based pointing game, IoU and best IoBB of the map against one box,
    by the functions the viewer's live score uses (marks/scores.py) at BINARY_THRESHOLD."""
    return localise_marks(raw_map, [box_mark(box)], shape)


def localise_marks(raw_map: np.ndarray, marks: Sequence[Mark],
                   shape: tuple[int, int]) -> dict[str, float]:
    """The four figures of the map against the union of one finding's marks on one image."""
    for mark in marks:
        x0, y0, x1, y1 = mark.bounds()
        if x0 < -1 or y0 < -1 or x1 > shape[1] + 1 or y1 > shape[0] + 1:
            raise AnnotationError(
                f"the '{mark.finding}' {'box' if mark.kind == 'rectangle' else 'mark'} (x "
                f"{x0:g}, y {y0:g}, w {x1 - x0:g}, h {y1 - y0:g}) lies outside the "
                f"{shape[1]}x{shape[0]} image: boxes must be in this image's pixels (NIH's "
                "are for the 1024x1024 originals)")
    maps, _ = normalize_heatmaps(np.asarray(raw_map)[None])
    truth = np.zeros(shape, bool)
    for mark in marks:
        truth |= mark.mask(shape)
    return localise_mask(maps[0], truth, BINARY_THRESHOLD).as_dict()


def box_mark(box: Box) -> Mark:
    """An NIH box as the viewer's rectangle mark (the same pixels: centres inside it)."""
    return Mark.rectangle(box.x, box.y, box.x + box.w, box.y + box.h, box.label)


# --- the whole evaluation ------------------------------------------------------------------

@dataclass
class Evaluation:
    labels: list[str]
    scores: list[np.ndarray] = field(default_factory=list)  # per image, [L]
    truth: list[np.ndarray] = field(default_factory=list)  # per image, [L] 0/1/-1
    found: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # label -> cases
    shapes: dict[str, int] = field(default_factory=dict)  # label -> boxes or shapes scored

    def add(self, values: np.ndarray, truth: np.ndarray) -> None:
        self.scores.append(np.asarray(values, np.float64))
        self.truth.append(np.asarray(truth))

    def add_case(self, label: str, result: dict[str, float], shapes: int = 1) -> None:
        """One marked case: an image's marks of `label` (`shapes` of them) against its map."""
        self.found.setdefault(label, []).append(result)
        self.shapes[label] = self.shapes.get(label, 0) + shapes

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
            row["marked"] = len(found)
            row["boxes"] = self.shapes.get(label, 0)
            per_case = {"pointing_game": [f["hit"] for f in found],
                        "energy_pointing_game": [f["energy"] for f in found],
                        **{f"iobb_acc_{thr:g}": [float(f["iobb"] >= thr) for f in found]
                           for thr in IOBB_THRESHOLDS},
                        "mean_iou": [f["iou"] for f in found]}
            for key, values in per_case.items():
                row[key] = float(np.mean(values)) if values else float("nan")
                if key in WITH_INTERVAL:
                    row[f"{key}_ci_low"], row[f"{key}_ci_high"] = mean_ci(values, n_boot, seed)
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


# the localisation figures given with their bootstrap interval (the IoBB accuracy at the
# threshold the report draws; the others are in the CSV without one)
WITH_INTERVAL = ("pointing_game", "energy_pointing_game", "iobb_acc_0.5", "mean_iou")
COLUMNS = ("label", "images", "positives", "auroc", "auroc_ci_low", "auroc_ci_high", "marked",
           "boxes", *(c for key in ("pointing_game", "energy_pointing_game",
                                    *(f"iobb_acc_{t:g}" for t in IOBB_THRESHOLDS), "mean_iou")
                      for c in ((key, f"{key}_ci_low", f"{key}_ci_high")
                                if key in WITH_INTERVAL else (key,))))


# with operating points (cli/evaluate.py adds them to the rows)
POINT_COLUMNS = ("op_rule", "op_threshold", "op_threshold_ci_low", "op_threshold_ci_high",
                 "op_sensitivity", "op_specificity")


def table_csv(rows: list[dict]) -> str:
    import io

    columns = COLUMNS + (POINT_COLUMNS if rows and "op_rule" in rows[0] else ())
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] if isinstance(row[c], (str, int)) else
                         ("" if np.isnan(row[c]) else f"{row[c]:.4f}") for c in columns])
    return buf.getvalue()
