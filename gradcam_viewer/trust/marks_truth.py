"""A radiologist's marks as `evaluate`'s truth: which images are positive for which label, and
the shapes the heatmaps are scored against.

Where marks come from (`MarkSources`):
- DICOM SR reports (TID 1500, from this viewer or any other tool): a folder given to
  `--boxes`, matched to the inputs by SOP Instance UID and frame (marks/sr_read.py);
- the viewer's own store (`--marks`): the marks you made on these images in the viewer, found
  by SOP Instance UID or, for other images, by the file's SHA-256 (marks/store.py); marks the
  viewer read from other readers' reports are not yours and are left out there;
- NIH boxes (the box CSV) are rectangles, matched by file name or path as before.

The truth of an image from its marks (`truth_of`): positive (1) for every label it has a
shape of; if it is marked "no finding", negative (0) for every label it has no shape of;
unknown (-1) for the others (a shape of one finding says nothing about the rest). A labels
file, when given, decides where it has a value; the marks decide the rest.

Findings match model labels by name, ignoring case, spaces and underscores, and with NIH's
own aliases ("Infiltrate" in the box file is the label "Infiltration").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.marks.shapes import Kind, Mark

if TYPE_CHECKING:
    from gradcam_viewer.imaging.image import LoadedImage
    from gradcam_viewer.marks.sr_read import ReportIndex
    from gradcam_viewer.marks.store import MarkStore


def _folded(text: str) -> str:
    return "".join(text.replace("_", " ").split()).casefold()


def label_of(finding: str, labels: Sequence[str]) -> str | None:
    """The model label a mark's finding names, or None."""
    from gradcam_viewer.trust.evaluate import ALIASES

    finding = ALIASES.get(finding.strip(), finding.strip())
    want = _folded(finding)
    return next((label for label in labels if _folded(label) == want), None)


def truth_of(marks: Iterable[Mark], labels: Sequence[str]) -> np.ndarray | None:
    """0/1/-1 per label from an image's marks (module docstring); None: no marks at all."""
    marks = list(marks)
    if not marks:
        return None
    normal = any(m.kind is Kind.NO_FINDING for m in marks)
    truth = np.full(len(labels), 0 if normal else -1, np.int8)
    for mark in marks:
        label = label_of(mark.finding, labels) if mark.is_region else None
        if label is not None:
            truth[labels.index(label)] = 1
    if not normal and not (truth == 1).any():
        return None  # shapes of findings the model has no label for only
    return truth


def combine(labelled: np.ndarray | None, marked: np.ndarray | None) -> np.ndarray | None:
    """The labels file's row where it has a value, the marks' truth elsewhere."""
    if labelled is None:
        return marked
    if marked is None:
        return labelled
    return np.where(labelled >= 0, labelled, marked).astype(np.int8)


@dataclass
class MarkSources:
    """The SR reports and the viewer's store `evaluate` was given."""

    reports: ReportIndex | None = None
    store: MarkStore | None = None
    unknown: dict[str, int] = field(default_factory=dict)  # finding -> marks not scored

    @property
    def active(self) -> bool:
        return self.reports is not None or self.store is not None

    def marks_of(self, path: Path, image: LoadedImage) -> list[Mark]:
        """The marks of one loaded input from the reports and the store."""
        from gradcam_viewer.marks.store import image_key

        meta = image.metadata.get("SOPInstanceUID")
        uid = str(meta.value) if meta is not None else ""
        dicom = str(image.source_format).startswith("DICOM")
        found: list[Mark] = []
        if self.reports is not None and uid and dicom:
            found += self.reports.marks_for(uid, image.frame)
        if self.store is not None:
            key = image_key(path, image.frame, uid if dicom else None)
            found += [m for m in self.store.load(key).marks if not m.read_only]
        return found

    def note_unknown(self, marks: Iterable[Mark], labels: Sequence[str]) -> None:
        for mark in marks:
            if mark.is_region and label_of(mark.finding, labels) is None:
                self.unknown[mark.finding] = self.unknown.get(mark.finding, 0) + 1


def by_label(marks: Iterable[Mark], labels: Sequence[str]) -> dict[str, list[Mark]]:
    """The shapes of each model label (findings the model has no label for left out)."""
    out: dict[str, list[Mark]] = {}
    for mark in marks:
        label = label_of(mark.finding, labels) if mark.is_region else None
        if label is not None:
            out.setdefault(label, []).append(mark)
    return out
