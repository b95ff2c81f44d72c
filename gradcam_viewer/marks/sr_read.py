"""Marks made elsewhere: TID 1500 Measurement Reports (Enhanced, Comprehensive or
Comprehensive 3D SR, from this viewer or any other tool: highdicom, OHIF's measurement export,
3D Slicer) read with highdicom's own parser and matched to images by the Referenced SOP
Instance UID (and frame) of each region.

What is taken:
- each Planar ROI group (TID 1410) whose Image Region is a 2D SCOORD: a closed POLYLINE of a
  rectangle's 4 corners becomes a rectangle, any other POLYLINE of 3 or more points a polygon
  (TID 1410 regions are areas: an unclosed one is closed), ELLIPSE an ellipse, CIRCLE (centre
  and a point on it) a circle-shaped ellipse;
- each Measurement Group (TID 1501) whose Finding is "Normal" (marks/codes.py): "no finding" on
  its source images.
What is left out, with a note: points and lines (no area), SCOORD3D regions (no pixel mapping
without the image's geometry), segmentation references, reports highdicom cannot parse.

A mark read here is read-only (`Mark.source` says which report, observer and date); its id is
"sr-" and the viewer's id the Tracking UID was made from (`codes.mark_id_of`), or a digest of
the Tracking UID: the same mark met in two reports, or twice, is one mark, and one of the
viewer's own marks met again in its exported report is recognised (`ReportIndex.marks_for`).
When two reports track the same mark on the same image, the newer report's version is kept.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradcam_viewer.marks.codes import finding_for, is_no_finding, mark_id_of
from gradcam_viewer.marks.shapes import NO_FINDING, Kind, Mark, Point

if TYPE_CHECKING:
    import highdicom as hd
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)
READ_PREFIX = "sr-"  # the id of a mark read from a report starts with this
CLOSED = 1e-3  # pixels: a POLYLINE whose ends are this close is closed


class ReportReadError(ValueError):
    """A file that holds no readable measurement report; the message is for the user."""


@dataclass(frozen=True)
class Found:
    """One mark a report holds for one image frame."""

    sop_instance_uid: str
    frame: int  # 0-based
    mark: Mark
    tracking_uid: str


@dataclass
class Report:
    """What one report file gave."""

    path: Path
    sop_instance_uid: str
    observer: str
    when: str  # content date and time, YYYYMMDDHHMMSS ('' unknown): the newer report wins
    found: list[Found] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # why some groups were not taken
    source: str = ""  # its marks' `Mark.source`: observer, date, file name


def read_report(path: Path) -> Report:
    """The marks of one SR file (ReportReadError when it holds no measurement report)."""
    import highdicom as hd

    try:
        sr = hd.sr.srread(path)
        content = sr.content
    except Exception as exc:  # any damage, or another kind of file
        raise ReportReadError(f"'{path.name}' is not a structured report highdicom can read "
                              f"({type(exc).__name__})") from exc
    if not isinstance(content, hd.sr.MeasurementReport):
        raise ReportReadError(f"'{path.name}' is not a TID 1500 measurement report")
    observer = _observer(content)
    when = (str(sr.get("ContentDate", "")) + str(sr.get("ContentTime", ""))).split(".")[0]
    source = f"{observer}, {_date(when)}, {Path(path).name}" if when else \
        f"{observer}, {Path(path).name}"
    report = Report(Path(path), str(sr.SOPInstanceUID), observer, when, source=source)
    try:
        planar = content.get_planar_roi_measurement_groups()
        image_groups = content.get_image_measurement_groups()
    except Exception as exc:  # a content tree highdicom's parser refuses
        raise ReportReadError(f"the measurement groups of '{path.name}' cannot be read "
                              f"({type(exc).__name__})") from exc
    for roi_group in planar:
        _planar(roi_group, source, report)
    for image_group in image_groups:
        _no_finding(image_group, source, report)
    return report


def _observer(content: hd.sr.MeasurementReport) -> str:
    try:
        for context in content.get_observer_contexts():
            name = getattr(context.observer_identifying_attributes, "name", None)
            if name:  # a PersonName: "Given Family" as people write it
                parts = [str(getattr(name, k, "") or "") for k in ("given_name", "family_name")]
                return " ".join(p for p in parts if p) or str(name)
    except Exception:  # an observer context highdicom cannot parse: unnamed
        log.debug("observer context unreadable", exc_info=True)
    return "unknown observer"


def _date(when: str) -> str:
    return f"{when[:4]}-{when[4:6]}-{when[6:8]}" if len(when) >= 8 else when


def _read_id(tracking_uid: str) -> str:
    own = mark_id_of(tracking_uid)
    if own is not None:
        return READ_PREFIX + own
    return READ_PREFIX + hashlib.sha256(tracking_uid.encode()).hexdigest()[:32]


def _finding(group: hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
             | hd.sr.MeasurementsAndQualitativeEvaluations) -> str:
    code = group.finding_type
    if code is not None:
        return finding_for(str(code.value), str(code.scheme_designator), str(code.meaning))
    return str(group.tracking_identifier or "").strip() or "Finding"


def _frames(item: Dataset) -> list[int]:
    """0-based frames a source image reference names (none: the first)."""
    numbers = item.get("ReferencedFrameNumber")
    if numbers is None or numbers == "":
        return [0]
    values = numbers if isinstance(numbers, Sequence) and not isinstance(numbers, str) \
        else [numbers]
    return [int(v) - 1 for v in values if int(v) >= 1] or [0]


def _source_items(item: Dataset) -> list[Dataset]:
    """The Referenced SOP Sequence items of a content item (an IMAGE item's value)."""
    return list(item.get("ReferencedSOPSequence", []))


def _planar(group: hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations, source: str,
            report: Report) -> None:
    import highdicom as hd

    label = group.tracking_identifier or "a region"
    try:
        roi = group.roi
    except Exception:  # noqa: BLE001 - an image region highdicom cannot parse
        roi = None
    if roi is None:
        report.left_out.append(f"{label}: not an image region (a segmentation reference)")
        return
    if not isinstance(roi, hd.sr.ImageRegion):
        report.left_out.append(f"{label}: a 3D region (SCOORD3D), which needs the image's "
                               "geometry to map to pixels")
        return
    tracking = str(group.tracking_uid or "")
    kind = str(getattr(roi.graphic_type, "value", roi.graphic_type))
    try:
        points = _shape(kind, np.asarray(roi.value, np.float64).reshape(-1, 2))
    except ValueError as exc:
        report.left_out.append(f"{label}: {exc}")
        return
    finding = _finding(group)
    if not tracking:
        tracking = f"{report.sop_instance_uid}.{len(report.found)}"
    sources = [s for item in roi.get("ContentSequence", []) for s in _source_items(item)]
    if not sources:
        report.left_out.append(f"{label}: the region names no source image")
        return
    for ref in sources:
        for frame in _frames(ref):
            mark = Mark(points[0], points[1], finding, _read_id(tracking), source)
            report.found.append(Found(str(ref.ReferencedSOPInstanceUID), frame, mark,
                                      tracking))


def _shape(kind: str, xy: np.ndarray) -> tuple[Kind, tuple[Point, ...]]:
    """A SCOORD's graphic type and points as a mark's kind and points; ValueError for what is
    not an area."""
    pts: list[Point] = [(float(x), float(y)) for x, y in xy]
    if not all(math.isfinite(v) for p in pts for v in p):
        raise ValueError("its coordinates are not finite numbers")
    if kind == "POLYLINE":
        if len(pts) > 1 and math.dist(pts[0], pts[-1]) <= CLOSED:
            pts = pts[:-1]
        if len(pts) < 3:
            raise ValueError("a line, not an area")
        if _is_rectangle(pts):
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            return Kind.RECTANGLE, ((min(xs), min(ys)), (max(xs), max(ys)))
        return Kind.POLYGON, tuple(pts)
    if kind == "ELLIPSE" and len(pts) == 4:
        return Kind.ELLIPSE, tuple(pts)
    if kind == "CIRCLE" and len(pts) == 2:
        (cx, cy), edge = pts
        r = math.dist((cx, cy), edge)
        return Kind.ELLIPSE, ((cx - r, cy), (cx + r, cy), (cx, cy - r), (cx, cy + r))
    if kind in ("POINT", "MULTIPOINT"):
        raise ValueError("points, not an area")
    raise ValueError(f"a {kind} of {len(pts)} points, which is not an area")


def _is_rectangle(pts: list[Point]) -> bool:
    """Four corners of an axis-aligned rectangle, in either order around it."""
    if len(pts) != 4:
        return False
    for i in range(4):
        (xa, ya), (xb, yb) = pts[i], pts[(i + 1) % 4]
        if not (xa == xb or ya == yb):
            return False
    xs, ys = {p[0] for p in pts}, {p[1] for p in pts}
    return len(xs) == 2 and len(ys) == 2


def _no_finding(group: hd.sr.MeasurementsAndQualitativeEvaluations, source: str,
                report: Report) -> None:
    code = group.finding_type
    if code is None or not is_no_finding(str(code.value), str(code.scheme_designator)):
        return  # measurements without a region (e.g. a model's values): no mark
    tracking = str(group.tracking_uid or f"{report.sop_instance_uid}.normal")
    for item in group[0].get("ContentSequence", []):
        if item.get("ValueType") != "IMAGE":
            continue
        for ref in _source_items(item):
            for frame in _frames(ref):
                mark = Mark(Kind.NO_FINDING, (), NO_FINDING, _read_id(tracking), source)
                report.found.append(Found(str(ref.ReferencedSOPInstanceUID), frame, mark,
                                          tracking))


# --- many reports ------------------------------------------------------------------------

class ReportIndex:
    """The marks of many reports by the image frame they are on."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, int], dict[str, tuple[str, Mark]]] = {}
        self.reports: list[Report] = []
        self.problems: list[str] = []  # files that could not be read, for the user

    def add(self, report: Report) -> None:
        self.reports.append(report)
        for f in report.found:
            marks = self._found.setdefault((f.sop_instance_uid, f.frame), {})
            older = marks.get(f.mark.id)
            if older is None or older[0] <= report.when:
                marks[f.mark.id] = (report.when, f.mark)

    @classmethod
    def read(cls, paths: Iterable[Path],
             cancelled: Callable[[], bool] = lambda: False) -> ReportIndex:
        index = cls()
        for path in paths:
            if cancelled():
                break
            try:
                index.add(read_report(path))
            except ReportReadError as exc:
                index.problems.append(str(exc))  # for the user; the log never names the
                # file (retrieved objects are named by their SOP Instance UID, an identifier)
                cause = exc.__cause__
                log.info("a report was left out (%s)",
                         type(cause).__name__ if cause is not None else "no measurement report")
        return index

    def __len__(self) -> int:
        return sum(len(m) for m in self._found.values())

    def images(self) -> list[tuple[str, int]]:
        """(SOP Instance UID, frame) of every image some report marks."""
        return list(self._found)

    def marks_for(self, sop_instance_uid: str, frame: int = 0,
                  own: Iterable[Mark] = ()) -> list[Mark]:
        """The read marks of one image frame, less those that are the viewer's own marks met
        again (its own exported report)."""
        own_ids = {m.id for m in own if not m.read_only}
        found = self._found.get((sop_instance_uid, frame), {})
        return [mark for _, mark in found.values()
                if mark.id.removeprefix(READ_PREFIX) not in own_ids]

    def sources(self) -> set[str]:
        """The `Mark.source` of every report read: what each gives for an image replaces what
        it gave before (`MarkEditor.add_read_only`), none included."""
        return {r.source for r in self.reports}

    def left_out(self) -> list[str]:
        return [f"{r.path.name}: {why}" for r in self.reports for why in r.left_out]
