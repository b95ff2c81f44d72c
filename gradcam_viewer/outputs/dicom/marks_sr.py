"""A radiologist's marks on one DICOM image as a TID 1500 Measurement Report in a
Comprehensive 3D SR, made with highdicom, in the image's patient and study (a new series
"Marks").

- one Planar ROI group (TID 1410) per shape: its Image Region is a SCOORD selected from the
  source image (and frame, for a multi-frame image) in the image's pixels; a rectangle or a
  polygon is a closed POLYLINE (the first point repeated at the end), an ellipse an ELLIPSE
  (the ends of its major axis, then of its minor axis). Coordinates are as `marks.shapes`
  keeps them, which is the SCOORD convention: no conversion either way;
- "no finding" (the image reviewed, nothing found) is a Measurement Group (TID 1501) whose
  Finding is SCT 17621005 "Normal", with the image as its source: a statement about the
  whole image, with no region;
- each group's Finding is coded by `marks.codes` and its Tracking Identifier carries the
  finding's name and a UID made from the mark's id (`tracking_uid`), so that the same mark in
  a later report keeps its UID and reading our own report back recognises our marks;
- the observer (TID 1002) is a person: the operator name from the viewer's settings, or
  "unknown";
- its UIDs are derived, not random (`report_uids`): the series from the image's SOP Instance
  UID (an image's reports share one series "Marks"), the instance from that, the frame and a
  digest of the marks and the observer. The same marks exported or sent again (a weekly
  `marks export --send` over images already sent) are the same instance, which a PACS keeps
  once; changed marks are a new instance.

Only the viewer's own marks are written (marks read from another report stay in that report).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from gradcam_viewer.marks.codes import NO_FINDING_CODE, FindingCode, code_for, tracking_uid
from gradcam_viewer.marks.shapes import ImageMarks, Kind, Mark
from gradcam_viewer.outputs.dicom.objects import (
    MANUFACTURER,
    DicomExportError,
    _fill_type2,
    _software_version,
    source_dataset,
)

if TYPE_CHECKING:
    import highdicom as hd

SERIES_MARKS = 9004  # after the Grad-CAM series (9001 .. 9003)
UNKNOWN_OBSERVER = "unknown"
OBJECT_NAME = "MARKS"  # the file is <stem>_MARKS.dcm (outputs/layout.dicom_file_name)


def object_name(frame: int, frames: int) -> str:
    """The report's name in `write_objects`' file name: "MARKS" (<stem>_MARKS.dcm), and for a
    frame of a multi-frame image "MARKS_f<frame, 1-based>", so that each frame's report has a
    file of its own (the window writes over an earlier export of the same image and frame)."""
    return f"{OBJECT_NAME}_f{frame + 1}" if frames > 1 else OBJECT_NAME


def observer_name(name: str | None) -> str:
    """A person name (PN) for the observer: the operator's name as set (Family^Given), or
    "unknown". A name typed without '^' is taken whole as the family name (a trailing '^'
    says so: PS3.5 6.2.1.2), rather than guessing which word is which."""
    text = " ".join((name or "").replace("\\", " ").replace("=", " ").split())[:64]
    text = text or UNKNOWN_OBSERVER
    return text if "^" in text else f"{text}^"


def graphic_data(mark: Mark) -> np.ndarray:
    """The SCOORD points of a shape: closed POLYLINE (rectangle, polygon) or ELLIPSE."""
    if mark.kind is Kind.RECTANGLE:
        (x0, y0), (x1, y1) = mark.points
        points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    elif mark.kind is Kind.POLYGON:
        points = [*mark.points, mark.points[0]]
    elif mark.kind is Kind.ELLIPSE:
        points = list(mark.points)
    else:
        raise ValueError("a 'no finding' mark has no region")
    return np.asarray(points, np.float64)


def report_uids(marks: ImageMarks, own: list[Mark], observer: str) -> tuple[str, str]:
    """(Series Instance UID, SOP Instance UID) of the report of `own` (the marks reported) on
    the image frame `marks.key`, by the observer's name as written (module docstring)."""
    content = json.dumps({"observer": observer, "marks": [m.to_json() for m in own]},
                         sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
    image = marks.key.value
    series = generate_uid(entropy_srcs=["gradcam-viewer marks series", image])
    instance = generate_uid(entropy_srcs=["gradcam-viewer marks report", image,
                                          str(marks.key.frame), digest])
    return series, instance


def _concept(code: FindingCode) -> hd.sr.CodedConcept:
    import highdicom as hd

    return hd.sr.CodedConcept(code.value, code.scheme, code.meaning)


def _group(mark: Mark, ref: Dataset, frame: int, multiframe: bool) -> Any:
    import highdicom as hd

    tracking = hd.sr.TrackingIdentifier(uid=tracking_uid(mark.id),
                                        identifier=(mark.finding or "Finding")[:64])
    frames = [frame + 1] if multiframe else None
    if mark.kind is Kind.NO_FINDING:
        return hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, finding_type=_concept(NO_FINDING_CODE),
            source_images=[hd.sr.SourceImageForMeasurementGroup(
                referenced_sop_class_uid=ref.SOPClassUID,
                referenced_sop_instance_uid=ref.SOPInstanceUID,
                referenced_frame_numbers=frames)])
    graphic_type = (hd.sr.GraphicTypeValues.ELLIPSE if mark.kind is Kind.ELLIPSE
                    else hd.sr.GraphicTypeValues.POLYLINE)
    region = hd.sr.ImageRegion(
        graphic_type=graphic_type, graphic_data=graphic_data(mark),
        source_image=hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=ref.SOPClassUID,
            referenced_sop_instance_uid=ref.SOPInstanceUID,
            referenced_frame_numbers=frames))
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, referenced_region=region,
        finding_type=_concept(code_for(mark.finding)))


def marks_report(ref: Dataset, marks: ImageMarks, observer: str | None = None) -> Dataset:
    """The report of the viewer's own marks on the image `ref` is the header of (its frame is
    `marks.key.frame`). DicomExportError when there is nothing to report or highdicom refuses
    the source."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    own = [m for m in marks.marks if not m.read_only]
    if not own:
        raise DicomExportError("this image has no marks of yours to report")
    if str(ref.get("SOPInstanceUID", "")) != marks.key.value:
        raise DicomExportError("the marks belong to another image than the one given")
    multiframe = int(ref.get("NumberOfFrames", 1) or 1) > 1
    person_name = observer_name(observer)
    series_uid, sop_uid = report_uids(marks, own, person_name)
    person = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=person_name))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            groups = [_group(m, ref, marks.key.frame, multiframe) for m in own]
            parts: dict[str, Any] = dict(
                observation_context=hd.sr.ObservationContext(observer_person_context=person),
                procedure_reported=hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure"),
                imaging_measurements=groups)
            try:  # the image library describes the source (orientation, spacing, ...)
                report = hd.sr.MeasurementReport(**parts, referenced_images=[ref])
            except AttributeError:  # ... which highdicom cannot when the header lacks those
                report = hd.sr.MeasurementReport(**parts)
            sr = hd.sr.Comprehensive3DSR(
                evidence=[ref], content=report, series_instance_uid=series_uid,
                series_number=SERIES_MARKS, sop_instance_uid=sop_uid,
                instance_number=1, manufacturer=MANUFACTURER, is_complete=True,
                is_final=False, is_verified=False, series_description="Marks")
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise DicomExportError(f"the marks report cannot be made ({exc})") from exc
    ds: Dataset = sr
    now = datetime.datetime.now()
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.SoftwareVersions = _software_version()
    return ds


def marks_objects(path: Path, marks: ImageMarks,
                  observer: str | None = None) -> list[tuple[str, Dataset]]:
    """[(name, report)] for the DICOM file `path` the marks were made on: the form
    `write_objects` and the outbox take (the name: `object_name`)."""
    ref = source_dataset(path)
    if not all(k in ref for k in ("StudyInstanceUID", "SOPInstanceUID", "SOPClassUID")):
        raise DicomExportError(f"'{path.name}' has no DICOM identity a report could reference")
    _fill_type2(ref)
    frames = int(ref.get("NumberOfFrames", 1) or 1)
    return [(object_name(marks.key.frame, frames), marks_report(ref, marks, observer))]
