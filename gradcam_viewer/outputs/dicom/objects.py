"""The three DICOM objects of one explained image.

- Secondary Capture: the overlay with the finding, value, method, model and notice burned in,
  in the source's patient and study (a new series "Grad-CAM <model>"), one per exported label.
- Parametric Map: the float heatmap at the source's resolution with a Real World Value Mapping
  "Class Activation", one per exported label (DICOM sources only).
- Comprehensive 3D SR with a TID 1500 Measurement Report: every label's value, the model as
  algorithm identification and the method, referencing the source image (DICOM sources only).

A PNG or JPEG source has no patient or study: it gets only Secondary Captures, in a new study
with empty patient fields.
"""

from __future__ import annotations

import copy
import datetime
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from gradcam_viewer.models.outputs import value_word
from gradcam_viewer.outputs.dicom.burnin import burn_in, burn_in_lines
from gradcam_viewer.render import OverlayStyle, composite

if TYPE_CHECKING:
    from gradcam_viewer.cam.result import ExplainResult
    from gradcam_viewer.imaging.image import LoadedImage
    from gradcam_viewer.models.identity import ModelIdentity

log = logging.getLogger(__name__)
MANUFACTURER = "gradcam-viewer"
CODES = "99GCVIEW"  # our private coding scheme for labels and methods (PS3.16 8.2)
SERIES_SC, SERIES_PM, SERIES_SR = 9001, 9002, 9003


class DicomExportError(Exception):
    """Why the DICOM objects could not be made, in words for the user."""


@dataclass(frozen=True, eq=False)
class DicomExport:
    """What one image's objects are made of: the image, what the viewer shows of it, its
    explanation and model, and the labels whose overlay and map are exported."""

    image: LoadedImage
    display: np.ndarray  # uint8 [H, W] or [H, W, 3], what the viewer shows
    result: ExplainResult
    model: ModelIdentity
    exported: tuple[str, ...]  # labels that get a Secondary Capture and a Parametric Map
    style: OverlayStyle = field(default_factory=OverlayStyle)
    heatmaps: dict[str, np.ndarray] = field(init=False, repr=False)  # label -> [H, W] in [0, 1]

    def __post_init__(self) -> None:
        size = (int(self.display.shape[0]), int(self.display.shape[1]))
        maps = {label: self.result.display_heatmap(self.model.labels.index(label), size)
                for label in self.exported}
        object.__setattr__(self, "heatmaps", maps)

    @property
    def source(self) -> Path:
        return Path(self.image.path)

    @property
    def is_dicom(self) -> bool:
        return str(self.image.source_format).startswith("DICOM")

    @property
    def frame(self) -> int:
        """0-based."""
        return int(self.image.frame)

    @property
    def out_of_distribution(self) -> bool | None:
        """The flag the report carries; None when the model is not calibrated."""
        from gradcam_viewer.trust.ood import report_flag

        return report_flag(self.result.ood)

    @property
    def model_name(self) -> str:
        return self.model.name or "model"

    @property
    def model_version(self) -> str:
        return self.model.version


def source_dataset(path: Path) -> Dataset:
    """The source's header (read-only; pixels are not needed)."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:
        raise DicomExportError(f"cannot read the DICOM header of '{path.name}' again") from exc


def build_objects(ex: DicomExport, notes: list[str] | None = None) -> list[tuple[str, Dataset]]:
    """(name, object): Secondary Captures "SC_<label>", and for a DICOM source Parametric Maps
    "PM_<label>" and the report "SR", in that order. A map or report that highdicom cannot
    derive from this source (an old SOP class, an enhanced multi-frame header) is left out with
    a sentence in `notes`; without a Secondary Capture there is nothing: DicomExportError."""
    ref = source_dataset(ex.source) if ex.is_dicom else None
    if ref is not None and not all(k in ref for k in ("StudyInstanceUID", "SOPInstanceUID",
                                                      "SOPClassUID")):
        ref = None  # a bare dataset without identity cannot be referenced: treat as a picture
    if ref is not None:
        _fill_type2(ref)
    objects: list[tuple[str, Dataset]] = []
    study = generate_uid()
    sc_series, pm_series = generate_uid(), generate_uid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n, label in enumerate(ex.heatmaps, start=1):
            objects.append((f"SC_{label}", _made("a Secondary Capture", ex, secondary_capture,
                                                 ex, label, ref, sc_series, n, study)))
        if ref is None:
            return objects
        steps: list[tuple[str, str, Callable[..., Dataset], tuple[Any, ...]]] = [
            (f"PM_{label}", "a Parametric Map", parametric_map,
             (ex, label, ref, pm_series, n)) for n, label in enumerate(ex.heatmaps, 1)]
        steps.append(("SR", "a structured report", structured_report, (ex, ref)))
        for name, what, make, args in steps:
            try:
                objects.append((name, _made(what, ex, make, *args)))
            except DicomExportError as exc:
                if notes is None:
                    raise
                notes.append(str(exc))
    return objects


def first_object_name(labels: list[str], is_dicom: bool) -> str | None:
    """The name `build_objects` gives its first object for these exported labels: the file
    `write_objects` writes last, whose presence says that all were written (--resume)."""
    return f"SC_{labels[0]}" if labels else ("SR" if is_dicom else None)


def _made(what: str, ex: DicomExport, make: Any, *args: Any) -> Dataset:
    try:
        return make(*args)
    except Exception as exc:  # highdicom checks the source and refuses what it cannot derive
        log.debug("DICOM object construction failed", exc_info=True)
        reason = f"{type(exc).__name__} {exc}" if isinstance(exc, (KeyError, AttributeError)) \
            else str(exc)
        raise DicomExportError(f"{what} cannot be made from '{ex.source.name}' ({reason})") \
            from exc


# Type 2 attributes of the patient and study modules that highdicom copies from the source;
# files in the wild often lack some. Absent ones become empty (= unknown), as the standard says.
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")


_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                       "TM", "UC", "UR", "UT"})
_KEEP = frozenset({"SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                   "Rows", "Columns"})


def _fill_type2(ref: Dataset) -> None:
    """On the in-memory copy of the header only; the source file is never written. Values
    that break their VR (a hash in a date, an age without its unit: seen in real exports)
    would make every object invalid: they become empty (Type 2) or are left out."""
    from pydicom import config
    from pydicom.valuerep import validate_value

    for elem in list(ref):
        if elem.VR not in _TEXT_VRS or elem.keyword in _KEEP or elem.value is None:
            continue
        values = elem.value if isinstance(elem.value, (list, tuple)) or elem.VM > 1 \
            else [elem.value]
        try:
            for value in values:
                validate_value(elem.VR, str(value), config.RAISE)
        except (ValueError, TypeError):
            del ref[elem.tag]
    for keyword in _TYPE2:
        if keyword not in ref:
            setattr(ref, keyword, None)


def _stamp(ds: Dataset, ex: DicomExport, description: str) -> Dataset:
    now = datetime.datetime.now()
    ds.SeriesDescription = f"{description} {ex.model_name}"[:64]
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.SoftwareVersions = _software_version()
    ds.ManufacturerModelName = ex.model_name[:64]
    return ds


def _software_version() -> str:
    from gradcam_viewer import __version__

    return str(__version__)


def secondary_capture(ex: DicomExport, label: str, ref: Dataset | None, series: str,
                      number: int, new_study: str) -> Dataset:
    import highdicom as hd

    k = ex.model.labels.index(label)
    rgb = composite(ex.display, ex.heatmaps[label], ex.style)
    lines = burn_in_lines(label, float(ex.result.probabilities[k]), ex.model.output_kind,
                          ex.result.method, ex.model_name, ex.model_version,
                          ex.model.synthetic_demo)
    pixels = burn_in(np.ascontiguousarray(rgb), lines)
    common: dict[str, Any] = dict(pixel_array=pixels, photometric_interpretation="RGB", bits_allocated=8,
                  coordinate_system="PATIENT", series_instance_uid=series,
                  series_number=SERIES_SC, sop_instance_uid=generate_uid(),
                  instance_number=number, manufacturer=MANUFACTURER,
                  patient_orientation=_orientation(ref))
    if ref is not None:
        sc = hd.sc.SCImage.from_ref_dataset(ref_dataset=ref, **common)
    else:
        sc = hd.sc.SCImage(study_instance_uid=new_study, **common)
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.BurnedInAnnotation = "YES"
    sc.ConversionType = "WSD"  # workstation
    sc.Laterality = ""  # Type 2C; the burned-in overlay is of the whole image
    sc.DerivationDescription = f"{ex.result.method} heatmap of {label} over the source image"[:1024]
    if ref is not None:
        sc.SourceImageSequence = [_image_reference(ref, ex.frame)]
    return _stamp(sc, ex, "Grad-CAM")


def _orientation(ref: Dataset | None) -> tuple[str, str]:
    value = ref.get("PatientOrientation") if ref is not None else None
    if value and len(value) == 2 and all(value):
        return str(value[0]), str(value[1])
    return "L", "F"  # a chest radiograph seen as usual; the file does not say otherwise


def _image_reference(ref: Dataset, frame: int) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ref.SOPClassUID
    item.ReferencedSOPInstanceUID = ref.SOPInstanceUID
    if int(ref.get("NumberOfFrames", 1) or 1) > 1:
        item.ReferencedFrameNumber = frame + 1  # the frame that was explained
    return item


def parametric_map(ex: DicomExport, label: str, ref: Dataset, series: str, number: int) -> Dataset:
    import highdicom as hd

    heat = np.ascontiguousarray(ex.heatmaps[label], dtype=np.float32)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="CAM", lut_explanation="Class Activation",
        unit=hd.sr.CodedConcept("1", "UCUM", "no units"), value_range=(0.0, 1.0),
        slope=1.0, intercept=0.0)
    spatial = _nominal_frame(ref)
    pm = hd.pm.ParametricMap(
        source_images=[spatial], pixel_array=heat, series_instance_uid=series,
        series_number=SERIES_PM, sop_instance_uid=generate_uid(), instance_number=number,
        manufacturer=MANUFACTURER, manufacturer_model_name=ex.model_name[:64],
        software_versions=_software_version(), device_serial_number="0",
        contains_recognizable_visual_features=False, real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=0.5, window_width=1.0)],
        content_label="GRADCAM", content_description=f"{ex.result.method} {label}"[:64],
        pixel_measures=_pixel_measures(spatial),
        plane_orientation=hd.PlaneOrientationSequence(
            "PATIENT", [float(v) for v in spatial.ImageOrientationPatient]),
        plane_positions=[hd.PlanePositionSequence(
            "PATIENT", [float(v) for v in spatial.ImagePositionPatient])])
    pm.Laterality = ""
    return _stamp(pm, ex, "Grad-CAM map")


_DIRECTION = {"L": (1, 0, 0), "R": (-1, 0, 0), "P": (0, 1, 0), "A": (0, -1, 0),
              "H": (0, 0, 1), "F": (0, 0, -1)}


def _nominal_frame(ref: Dataset) -> Dataset:
    """The Parametric Map IOD needs a frame of reference and plane geometry, which a projection
    radiograph lacks. The map gets a nominal one: the source's own if it has one, otherwise a
    frame derived from the source's SOP Instance UID (the same for every map of that image),
    oriented by its Patient Orientation, at the origin. It places the map on the source's pixel
    grid; it is not a position in the patient."""
    spatial = copy.deepcopy(ref)
    if "FrameOfReferenceUID" not in spatial:
        spatial.FrameOfReferenceUID = generate_uid(
            entropy_srcs=["gradcam-viewer nominal frame", str(ref.SOPInstanceUID)])
    if "ImageOrientationPatient" not in spatial:
        row, col = (_DIRECTION.get(c[:1], d) for c, d in
                    zip(_orientation(ref), ((1, 0, 0), (0, 0, -1)), strict=True))
        if row == col or row == tuple(-x for x in col):
            row, col = (1, 0, 0), (0, 0, -1)
        spatial.ImageOrientationPatient = [*row, *col]
    if "ImagePositionPatient" not in spatial:
        spatial.ImagePositionPatient = [0.0, 0.0, 0.0]
    if not _positive(spatial.get("PixelSpacing")):  # the IOD needs one; 1 mm if unknown
        imager = spatial.get("ImagerPixelSpacing")
        spatial.PixelSpacing = list(imager) if _positive(imager) else [1.0, 1.0]
    if "SliceThickness" not in spatial:
        spatial.SliceThickness = None  # a projection: no thickness (highdicom reads it)
    return spatial


def _positive(spacing: Any) -> bool:
    try:
        return len(spacing) == 2 and all(float(v) > 0 for v in spacing)
    except (TypeError, ValueError):
        return False


def _pixel_measures(ref: Dataset) -> Any:
    import highdicom as hd

    spacing = ref.get("PixelSpacing")
    if not _positive(spacing):
        return None
    return hd.PixelMeasuresSequence(pixel_spacing=[float(s) for s in spacing],
                                    slice_thickness=None)


def structured_report(ex: DicomExport, ref: Dataset) -> Dataset:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm = hd.sr.AlgorithmIdentification(
        name=ex.model_name[:64], version=ex.model_version or "unknown",
        family=codes.cid7162.ArtificialIntelligence,
        # each parameter is one TEXT item: "name=value"
        parameters=[f"{k}={v}" for k, v in (
            ("method", ex.result.method), ("layer", ex.result.layer),
            ("weights SHA-256", str(ex.model.sha256 or "unknown")),
            ("output kind", ex.model.output_kind))])
    word = value_word(ex.model.output_kind)
    measurements = [
        hd.sr.Measurement(
            name=hd.sr.CodedConcept(f"L{i}", CODES, f"{label} {word}"[:64]),
            value=round(float(ex.result.probabilities[i]), 6),
            unit=hd.sr.CodedConcept("1", "UCUM", "no units"), algorithm_id=algorithm)
        for i, label in enumerate(ex.model.labels)]
    evaluations = []
    if ex.out_of_distribution is not None:
        evaluations.append(hd.sr.QualitativeEvaluation(
            name=hd.sr.CodedConcept("OOD", CODES, "Input outside the model's training data"),
            value=codes.SCT.Yes if ex.out_of_distribution else codes.SCT.No))
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(),
                                                     identifier=f"{ex.result.method} findings"),
        algorithm_id=algorithm,
        method=hd.sr.CodedConcept(ex.result.method.upper()[:16], CODES, ex.result.method),
        measurements=measurements, qualitative_evaluations=evaluations or None,
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ref)])
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=[ex.model_name, ex.model_version]),
            name=ex.model_name[:64], manufacturer_name=MANUFACTURER))
    parts: dict[str, Any] = dict(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure"),
        imaging_measurements=[group])
    try:  # the image library describes the source (its orientation, spacing, ...)
        report = hd.sr.MeasurementReport(**parts, referenced_images=[ref])
    except AttributeError:  # ... which highdicom cannot when the header lacks those
        report = hd.sr.MeasurementReport(**parts)  # the group still references the source
    sr = hd.sr.Comprehensive3DSR(
        evidence=[ref], content=report, series_instance_uid=generate_uid(),
        series_number=SERIES_SR, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True, is_final=False, is_verified=False)
    return _stamp(sr, ex, "Grad-CAM report")


def write_objects(objects: list[tuple[str, Dataset]], folder: Path, stem: str,
                  overwrite: bool = False) -> list[Path]:
    """Each object as `<stem>_<name>.dcm` in `folder` (layout.dicom_file_name),
    written atomically, the first one last: its file says that all were written (an
    interrupted run leaves it out, and --resume makes the image's objects again). The paths
    are returned in the objects' order."""
    from gradcam_viewer.outputs.layout import dicom_file_name
    from gradcam_viewer.outputs.safe_write import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = [folder / dicom_file_name(stem, name) for name, _ in objects]
    for k in [*range(1, len(objects)), 0][:len(objects)]:
        def save(tmp: Path, ds: Dataset = objects[k][1]) -> None:
            ds.save_as(tmp, enforce_file_format=True)

        paths[k] = write_atomic(paths[k], save, overwrite)
    return paths
