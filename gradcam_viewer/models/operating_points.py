"""A model's operating points: per label, the threshold above which its value is called
positive, chosen by `gradcam-viewer evaluate --operating-points` on a site's own cases and kept
in the manifest's "operating_points" entry (trust/operating_points.py chooses them).

The entry names the rule (`youden`, `sensitivity=0.9`, `specificity=0.9`), the number of cases
and the date, and the SHA-256 of the weights it was set on, recomputed from the file when it
was written: points set on other weights than the manifest's are not used.

A value is positive at a threshold t when value >= t (the convention of an ROC curve's
thresholds, as scikit-learn's `roc_curve` gives them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

RULE_WORDS = {"youden": "Youden's J", "sensitivity": "sensitivity", "specificity": "specificity"}


@dataclass(frozen=True)
class OperatingPoint:
    label: str
    threshold: float
    sensitivity: float  # on the cases it was set on
    specificity: float
    positives: int
    negatives: int
    threshold_ci: tuple[float, float] | None = None  # 95% bootstrap interval

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "threshold": self.threshold, "sensitivity": round(self.sensitivity, 4),
            "specificity": round(self.specificity, 4), "positives": self.positives,
            "negatives": self.negatives}
        if self.threshold_ci is not None:
            out["threshold_ci"] = [self.threshold_ci[0], self.threshold_ci[1]]
        return out


@dataclass(frozen=True)
class OperatingPoints:
    rule: str  # "youden", "sensitivity=0.9", "specificity=0.9"
    cases: int  # images the thresholds were set on
    date: str  # YYYY-MM-DD
    weights_sha256: str
    points: tuple[OperatingPoint, ...]
    source: str = ""  # what the truth was (free text)

    def point(self, label: str) -> OperatingPoint | None:
        return next((p for p in self.points if p.label == label), None)

    def call(self, label: str, value: float) -> bool | None:
        """Positive (True), negative (False), or None when the label has no point."""
        point = self.point(label)
        return None if point is None else bool(float(value) >= point.threshold)

    def calls(self, labels: Iterable[str], values: Iterable[float]) -> dict[str, bool | None]:
        """Every label's call for one image's values (in the labels' order)."""
        return {label: self.call(label, float(v))
                for label, v in zip(labels, values, strict=True)}

    @property
    def measure(self) -> str:
        return self.rule.split("=")[0]

    def describe(self, label: str, value: float | None = None) -> str:
        """'positive at the operating point set on 212 local cases, sensitivity 0.90'; without
        a value, the point itself."""
        point = self.point(label)
        if point is None:
            return ""
        if self.measure == "specificity":
            achieved = f"specificity {point.specificity:.2f}"
        elif self.measure == "sensitivity":
            achieved = f"sensitivity {point.sensitivity:.2f}"
        else:
            achieved = (f"Youden's J: sensitivity {point.sensitivity:.2f}, specificity "
                        f"{point.specificity:.2f}")
        where = f"the operating point set on {self.cases} local cases, {achieved}"
        if value is None:
            return f"{where} (threshold {point.threshold:.3f})"
        verdict = "positive at" if value >= point.threshold else "below"
        return f"{verdict} {where}"

    def summary(self) -> dict[str, object]:
        """What a result record says about the points its calls come from."""
        return {"rule": self.rule, "cases": self.cases, "date": self.date}

    def to_json(self) -> dict[str, object]:
        """The manifest's "operating_points" entry."""
        out: dict[str, object] = {
            "rule": self.rule, "cases": self.cases, "date": self.date,
            "weights_sha256": self.weights_sha256,
            "labels": {p.label: p.to_json() for p in self.points}}
        if self.source:
            out["source"] = self.source
        return out

    @classmethod
    def of(cls, manifest: Mapping[str, object]) -> OperatingPoints | None:
        """The manifest's points (validated by its schema), or None: absent, or set on other
        weights than the manifest names."""
        entry = manifest.get("operating_points")
        if not isinstance(entry, Mapping):
            return None
        weights = manifest.get("weights_sha256")
        if weights is None or entry.get("weights_sha256") != weights:
            return None
        labels = entry.get("labels")
        if not isinstance(labels, Mapping):
            return None
        points = []
        for label, value in labels.items():
            if not isinstance(value, Mapping):
                continue
            ci = value.get("threshold_ci")
            points.append(OperatingPoint(
                str(label), _number(value.get("threshold")),
                _number(value.get("sensitivity")), _number(value.get("specificity")),
                int(_number(value.get("positives"))), int(_number(value.get("negatives"))),
                (_number(ci[0]), _number(ci[1])) if isinstance(ci, list) and len(ci) == 2
                else None))
        return cls(str(entry.get("rule", "")), int(_number(entry.get("cases"))),
                   str(entry.get("date", "")), str(weights), tuple(points),
                   str(entry.get("source", "")))


def _number(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else float("nan")
