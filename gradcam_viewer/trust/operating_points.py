"""Choosing operating points on a site's own cases: per label, the threshold a rule picks on
the ROC curve of the model's values against the truth (`evaluate`'s labels and marks), with
a 95% percentile bootstrap interval over the cases; and storing them in the model's manifest
(models/operating_points.py reads them back).

Rules (`Rule.parse`):
- `youden`: the threshold that maximises Youden's J = sensitivity + specificity - 1 (the
  first, i.e. highest, threshold reaching the maximum);
- `sensitivity=X`: the highest threshold whose sensitivity is at least X (the most specific
  point that finds that share of the positives);
- `specificity=X`: the lowest threshold whose specificity is at least X (the most sensitive
  point that keeps that share of the negatives).
Thresholds are the values the model gives on the cases (the curve's vertices), so a value is
positive when value >= threshold. A label whose cases are all of one class, or whose rule is
met only by calling nothing positive, gets no point (the command says which and why).
numpy only.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradcam_viewer.models.operating_points import OperatingPoint, OperatingPoints
from gradcam_viewer.trust.evaluate import BOOTSTRAP, Evaluation

MEASURES = ("youden", "sensitivity", "specificity")


@dataclass(frozen=True)
class Rule:
    measure: str
    target: float | None = None

    @classmethod
    def parse(cls, text: str) -> Rule:
        """'youden', 'sensitivity=0.9' or 'specificity=0.9'; ValueError saying what is wanted."""
        name, _, value = text.strip().lower().partition("=")
        if name == "youden" and not value:
            return cls("youden")
        if name in ("sensitivity", "specificity"):
            try:
                target = float(value)
            except ValueError:
                target = -1.0
            if 0 < target <= 1:
                return cls(name, target)
        raise ValueError(f"unknown operating point rule '{text}': give youden, "
                         "sensitivity=X or specificity=X with 0 < X <= 1")

    def __str__(self) -> str:
        return self.measure if self.target is None else f"{self.measure}={self.target:g}"


def roc_points(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
    """False and true positive rates and their thresholds, from the highest threshold down:
    the first point is (0, 0) at threshold +inf (nothing positive), then one point per
    distinct value (positive when value >= threshold)."""
    scores = np.asarray(scores, np.float64)
    truth = np.asarray(truth).astype(bool)
    order = np.argsort(-scores, kind="mergesort")
    s, t = scores[order], truth[order]
    last = np.r_[s[1:] != s[:-1], True]
    tp, fp = np.cumsum(t)[last], np.cumsum(~t)[last]
    pos, neg = max(int(t.sum()), 1), max(int((~t).sum()), 1)
    return (np.r_[0.0, fp / neg], np.r_[0.0, tp / pos], np.r_[np.inf, s[last]])


def threshold_for(scores: np.ndarray, truth: np.ndarray, rule: Rule) -> float | None:
    """The threshold `rule` picks (module docstring), or None."""
    truth = np.asarray(truth).astype(bool)
    if truth.all() or not truth.any():
        return None
    fpr, tpr, thresholds = roc_points(scores, truth)
    if rule.measure == "youden":
        at = int(np.argmax(tpr - fpr))
    elif rule.measure == "sensitivity":
        assert rule.target is not None
        at = int(np.flatnonzero(tpr >= rule.target - 1e-12)[0])
    else:
        assert rule.target is not None
        at = int(np.flatnonzero(1 - fpr >= rule.target - 1e-12)[-1])
    return None if at == 0 else float(thresholds[at])


def choose(evaluation: Evaluation, rule: Rule, cases: int, source: str, weights_sha256: str,
           n_boot: int = BOOTSTRAP, seed: int = 0,
           today: datetime.date | None = None) -> tuple[OperatingPoints, list[str]]:
    """The operating points of every label that can have one, and a note for each that
    cannot."""
    scores = np.array(evaluation.scores) if evaluation.scores else \
        np.zeros((0, len(evaluation.labels)))
    truth = np.array(evaluation.truth) if evaluation.truth else \
        np.zeros((0, len(evaluation.labels)))
    points: list[OperatingPoint] = []
    notes: list[str] = []
    for k, label in enumerate(evaluation.labels):
        known = truth[:, k] >= 0 if len(truth) else np.zeros(0, bool)
        s, t = scores[known, k], truth[known, k] == 1
        threshold = threshold_for(s, t, rule) if len(s) else None
        if threshold is None:
            why = ("its cases are all of one class" if len(s) == 0 or t.all() or not t.any()
                   else f"only calling nothing positive meets {rule}")
            notes.append(f"no operating point for {label}: {why}")
            continue
        points.append(OperatingPoint(
            label, threshold, float(np.mean(s[t] >= threshold)),
            float(np.mean(s[~t] < threshold)), int(t.sum()), int((~t).sum()),
            threshold_interval(s, t, rule, n_boot, seed)))
    date = (today or datetime.date.today()).isoformat()
    return OperatingPoints(str(rule), cases, date, weights_sha256, tuple(points),
                           source), notes


def threshold_interval(scores: np.ndarray, truth: np.ndarray, rule: Rule, n: int = BOOTSTRAP,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile interval of the threshold over `n` resamples of the cases (resamples with
    one class only are drawn again; resamples where the rule picks none are left out)."""
    rng = np.random.default_rng(seed)
    values: list[float] = []
    draws = 0
    while len(values) < n and draws < 20 * n:
        draws += 1
        idx = rng.integers(0, len(scores), len(scores))
        t = truth[idx]
        if t.all() or not t.any():
            continue
        value = threshold_for(scores[idx], t, rule)
        if value is not None:
            values.append(value)
    if not values:
        return None
    lo, hi = np.percentile(values, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def store_points(manifest_file: Path, points: OperatingPoints) -> Path:
    """The points written into the manifest file (validated against its schema first)."""
    from gradcam_viewer.models.manifest import validate_manifest, write_manifest

    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    manifest["operating_points"] = points.to_json()
    return write_manifest(manifest_file, validate_manifest(manifest, manifest_file.name))
