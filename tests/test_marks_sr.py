"""Marks as DICOM SR (TID 1500): what the viewer writes passes dciodvfy and reads back through
highdicom's own parser as the same shapes; reports written by the test with highdicom
directly (as other tools write them) are read and matched to their images; the finding codes
are the standard's (pydicom's transcription of PS3.16 as the oracle)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicom_checks import dciodvfy
from dicom_factory import write, write_multiframe
from gradcam_viewer.marks import codes
from gradcam_viewer.marks.shapes import ImageKey, ImageMarks, Kind, Mark
from gradcam_viewer.marks.sr_read import ReportIndex, ReportReadError, read_report
from gradcam_viewer.outputs.dicom import write_objects
from gradcam_viewer.outputs.dicom.marks_sr import marks_objects
from gradcam_viewer.resources import samples_dir

SOURCE = "phantom_02_cardiomegaly_effusion.dcm"


def _uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def _marks(uid: str, frame: int = 0) -> ImageMarks:
    return ImageMarks(ImageKey("sop", uid, frame), (
        Mark.rectangle(10.25, 20.5, 110.75, 80.125, "Effusion"),
        # a rotated ellipse: major axis 45 degrees, minor axis across it
        Mark(Kind.ELLIPSE, ((300.0, 300.0), (400.0, 400.0), (335.0, 365.0), (365.0, 335.0)),
             "Cardiomegaly"),
        Mark.polygon([(400.5, 400.0), (500.0, 420.25), (450.0, 520.3), (410.0, 480.0)],
                     "Pleural_Thickening"),
        Mark(Kind.RECTANGLE, ((1, 1), (5, 5)), "Mass", "other", source="someone else's"),
    ), SOURCE, (768, 768))


def _expected_graphic(mark: Mark) -> tuple[str, np.ndarray]:
    """What PS3.3 asks for, spelled out here rather than taken from the writer."""
    if mark.kind is Kind.RECTANGLE:
        (x0, y0), (x1, y1) = mark.points
        return "POLYLINE", np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)])
    if mark.kind is Kind.POLYGON:
        return "POLYLINE", np.array([*mark.points, mark.points[0]])
    return "ELLIPSE", np.array(mark.points)


@pytest.fixture
def written(tmp_path):
    src = samples_dir() / SOURCE
    marks = _marks(_uid(src))
    path = write_objects(marks_objects(src, marks, "Smith^Jane"), tmp_path, "x")[0]
    return src, marks, path


def test_marks_report_passes_dciodvfy(written):
    errors, _ = dciodvfy(written[2])
    assert errors == []


def test_highdicom_reads_the_shapes_back(written):
    import highdicom as hd

    src, marks, path = written
    sr = hd.sr.srread(path)
    assert sr.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert sr.StudyInstanceUID == pydicom.dcmread(src, stop_before_pixels=True).StudyInstanceUID
    report = sr.content
    assert isinstance(report, hd.sr.MeasurementReport)
    groups = report.get_planar_roi_measurement_groups(referenced_sop_instance_uid=_uid(src))
    own = [m for m in marks.marks if not m.read_only]
    assert len(groups) == len(own)  # one group per shape; the read-only mark is not ours
    for group, mark in zip(groups, own, strict=True):
        kind, points = _expected_graphic(mark)
        assert group.roi.graphic_type.value == kind
        np.testing.assert_allclose(group.roi.value, points, atol=1e-4)  # FL: float32
        code = codes.code_for(mark.finding)
        assert (group.finding_type.value, group.finding_type.scheme_designator,
                group.finding_type.meaning) == (code.value, code.scheme, code.meaning)
        assert group.tracking_identifier == mark.finding
        assert group.tracking_uid == codes.tracking_uid(mark.id)
    effusion = groups[0].finding_type
    assert (effusion.value, effusion.scheme_designator) == ("60046008", "SCT")
    private = groups[2].finding_type
    assert (private.scheme_designator, private.meaning) == ("99GCVIEW", "Pleural_Thickening")
    observers = report.get_observer_contexts()
    assert [str(o.observer_identifying_attributes.name) for o in observers] == ["Smith^Jane"]


def test_our_reader_gives_the_same_shapes(written):
    src, marks, path = written
    report = read_report(path)
    assert report.left_out == []
    own = [m for m in marks.marks if not m.read_only]
    assert [f.sop_instance_uid for f in report.found] == [_uid(src)] * len(own)
    for found, mark in zip(report.found, own, strict=True):
        got = found.mark
        assert (got.kind, got.finding) == (mark.kind, mark.finding)
        np.testing.assert_allclose(got.points, mark.points, atol=1e-4)
        assert np.array_equal(got.mask((768, 768)), mark.mask((768, 768)))
        assert got.read_only and "Jane Smith" in got.source
    # the viewer's own marks are recognised when their report comes back
    index = ReportIndex.read([path])
    assert index.marks_for(_uid(src), 0, own=own) == []
    assert len(index.marks_for(_uid(src), 0)) == len(own)


def test_no_finding_round_trip(tmp_path):
    import highdicom as hd

    src = samples_dir() / "phantom_01_normal.dcm"
    marks = ImageMarks(ImageKey("sop", _uid(src)), (Mark.no_finding(),), src.name, (768, 768))
    path = write_objects(marks_objects(src, marks, None), tmp_path, "n")[0]
    assert dciodvfy(path)[0] == []
    report = hd.sr.srread(path).content
    assert report.get_planar_roi_measurement_groups() == []
    groups = report.get_image_measurement_groups()
    assert [(g.finding_type.value, g.finding_type.scheme_designator) for g in groups] == \
        [("17621005", "SCT")]
    assert str(report.get_observer_contexts()[0].observer_identifying_attributes.name) == \
        "unknown^"
    found = read_report(path).found
    assert [(f.sop_instance_uid, f.mark.kind) for f in found] == [(_uid(src), Kind.NO_FINDING)]


def test_multiframe_marks_name_their_frame(tmp_path):
    src, ds = write_multiframe(tmp_path / "mf.dcm")
    marks = ImageMarks(ImageKey("sop", str(ds.SOPInstanceUID), 2),
                       (Mark.rectangle(4, 5, 30, 40, "Nodule"),), "mf.dcm", (64, 64))
    path = write_objects(marks_objects(src, marks, "A^B"), tmp_path / "o", "mf")[0]
    assert dciodvfy(path)[0] == []
    found = read_report(path).found
    assert [(f.sop_instance_uid, f.frame) for f in found] == [(str(ds.SOPInstanceUID), 2)]


def test_the_same_marks_are_the_same_report_and_changed_marks_a_new_one(tmp_path):
    """Exported or sent again, identical marks give the identical SOP Instance UID (a PACS
    keeps one report, not one per weekly send); a moved mark, another observer or another
    frame give a new one. An image's reports share their series; another image's do not."""
    src = samples_dir() / SOURCE
    uid = _uid(src)

    def uids(marks, observer="Smith^Jane", path=src):
        [(_, ds)] = marks_objects(path, marks, observer)
        return str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)

    marks = _marks(uid)
    series, first = uids(marks)
    assert uids(marks) == (series, first)
    assert uids(_marks(uid)) != (series, first)  # new marks (new ids): another report
    moved = marks.with_mark(marks.marks[0].moved(1, 0))
    theirs_changed = marks.with_mark(replace(marks.marks[3], points=((2, 2), (6, 6))))
    others = {uids(moved)[1], uids(marks, "Doe^John")[1], first}
    assert len(others) == 3 and {uids(moved)[0], uids(marks, "Doe^John")[0]} == {series}
    assert uids(theirs_changed) == (series, first)  # only your marks are in the report
    mf, ds = write_multiframe(tmp_path / "mf.dcm")
    per_frame = [ImageMarks(ImageKey("sop", str(ds.SOPInstanceUID), f),
                            (replace(marks.marks[0], id="same"),), "mf", (64, 64))
                 for f in (0, 1)]
    (s0, i0), (s1, i1) = uids(per_frame[0], path=mf), uids(per_frame[1], path=mf)
    assert s0 == s1 != series and i0 != i1
    for value in (series, first, s0, i0, i1):
        assert pydicom.uid.UID(value).is_valid


def test_nothing_to_report_is_said(tmp_path):
    from gradcam_viewer.outputs.dicom import DicomExportError

    src = samples_dir() / SOURCE
    only_theirs = ImageMarks(ImageKey("sop", _uid(src)), _marks(_uid(src)).marks[3:])
    with pytest.raises(DicomExportError, match="no marks of yours"):
        marks_objects(src, only_theirs)
    with pytest.raises(DicomExportError, match="another image"):
        marks_objects(src, _marks("1.2.3.4"))


# --- reports of other tools ------------------------------------------------------------------

def _foreign_report(ref: pydicom.Dataset, path: Path, observer="Other^Reader") -> Path:
    """A TID 1500 report as other tools write it, made here with highdicom directly: an OHIF-
    style free-text label (CST4), a standard SNOMED code, a CIRCLE, an unclosed polygon, and
    what is no area (a line, a point)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes as dcodes

    def region(kind, points):
        return hd.sr.ImageRegion(
            graphic_type=getattr(hd.sr.GraphicTypeValues, kind),
            graphic_data=np.asarray(points, float),
            source_image=hd.sr.SourceImageForRegion(ref.SOPClassUID, ref.SOPInstanceUID))

    def group(n, reg, finding):
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=pydicom.uid.generate_uid(),
                                                         identifier=f"ROI {n}"),
            referenced_region=reg, finding_type=finding)

    free_text = hd.sr.CodedConcept("CORNERSTONEFREETEXT", "CST4", "Effusion")
    groups = [
        group(1, region("POLYLINE", [(50, 60), (50, 160), (250, 160), (250, 60), (50, 60)]),
              free_text),
        group(2, region("CIRCLE", [(400, 300), (440, 300)]),
              hd.sr.CodedConcept("27925004", "SCT", "Nodule")),
        group(3, region("POLYLINE", [(500, 500), (600, 520), (560, 610)]),
              hd.sr.CodedConcept("4147007", "SCT", "Mass")),
        group(4, region("POLYLINE", [(10, 10), (100, 100)]), free_text),
        group(5, region("POINT", [(20, 20)]), free_text),
    ]
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_person_context=hd.sr.ObserverContext(
                observer_type=dcodes.DCM.Person,
                observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                    name=observer))),
        procedure_reported=dcodes.LN.CTUnspecifiedBodyRegion, imaging_measurements=groups)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[ref], content=report, series_instance_uid=pydicom.uid.generate_uid(),
        series_number=7, sop_instance_uid=pydicom.uid.generate_uid(), instance_number=1,
        manufacturer="another tool")
    sr.save_as(path, enforce_file_format=True)
    return path


def test_a_report_of_another_tool_is_read_and_matched(tmp_path):
    src = samples_dir() / SOURCE
    ref = pydicom.dcmread(src)
    path = _foreign_report(ref, tmp_path / "other.dcm")
    index = ReportIndex.read([path])
    marks = index.marks_for(str(ref.SOPInstanceUID), 0)
    assert [(m.kind, m.finding) for m in marks] == [
        (Kind.RECTANGLE, "Effusion"), (Kind.ELLIPSE, "Nodule"), (Kind.POLYGON, "Mass")]
    assert marks[0].points == ((50, 60), (250, 160))
    circle = marks[1].mask((768, 768))
    yy, xx = np.mgrid[0:768, 0:768] + 0.5
    assert np.array_equal(circle, (xx - 400) ** 2 + (yy - 300) ** 2 < 40 ** 2)
    assert marks[2].points == ((500, 500), (600, 520), (560, 610))
    assert all(m.read_only and m.source.startswith("Reader Other") for m in marks)
    left_out = index.left_out()
    assert len(left_out) == 2 and "a line" in left_out[0] and "points" in left_out[1]
    assert index.marks_for("1.2.3", 0) == []  # another image: nothing


def test_the_newer_report_of_a_mark_wins(tmp_path):
    import highdicom as hd

    src = samples_dir() / SOURCE
    uid = _uid(src)
    first = _marks(uid)
    old = write_objects(marks_objects(src, first, "A^B"), tmp_path / "old", "x")[0]
    moved = ImageMarks(first.key, (first.marks[0].moved(5, 0),))
    new = write_objects(marks_objects(src, moved, "A^B"), tmp_path / "new", "x")[0]
    for path, when in ((old, "20240101"), (new, "20250101")):
        ds = pydicom.dcmread(path)
        ds.ContentDate = when
        ds.save_as(path)
    assert hd.sr.srread(new).content is not None
    for order in ([old, new], [new, old]):
        marks = ReportIndex.read(order).marks_for(uid)
        effusion = [m for m in marks if m.finding == "Effusion"]
        assert len(effusion) == 1 and effusion[0].points[0][0] == pytest.approx(15.25)


def test_files_that_are_no_reports_are_named(tmp_path):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00" * 40)
    with pytest.raises(ReportReadError, match="broken.dcm"):
        read_report(bad)
    image = samples_dir() / SOURCE
    index = ReportIndex.read([bad, image])
    assert len(index.problems) == 2 and len(index) == 0


def test_the_model_report_holds_no_marks(tmp_path):
    """The Grad-CAM report (a TID 1500 report too) has measurements, not regions."""
    from gradcam_viewer.outputs.dicom import build_objects
    from test_dicom_out import _explained

    objs = dict(build_objects(_explained(samples_dir() / SOURCE)))
    path = write_objects([("SR", objs["SR"])], tmp_path, "m")[0]
    report = read_report(path)
    assert report.found == [] and report.left_out == []


# --- codes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("label", sorted(codes.STANDARD))
def test_standard_codes_are_the_standards(label):
    """Each code is in PS3.16 as pydicom transcribes it, with its meaning, in the context group
    the table names."""
    from pydicom.sr import _cid_dict, _concepts_dict

    code = codes.STANDARD[label]
    listed = {meaning: cids for by_keyword in _concepts_dict.concepts[code.scheme].values()
              for value, (meaning, cids) in by_keyword.items() if value == code.value}
    assert code.meaning in listed
    # the code means one thing wherever PS3.16 lists it (SNOMED's fully specified names, with
    # their "(disorder)" tag, are listed too)
    assert {m.split(" (")[0].casefold() for m in listed} == {code.meaning.casefold()}
    cid = int(code.where.removeprefix("CID "))
    assert cid in listed[code.meaning]
    keywords = _cid_dict.cid_concepts[cid][code.scheme]
    assert any(code.value in _concepts_dict.concepts[code.scheme][k] for k in keywords)
    assert codes.finding_for(code.value, code.scheme, "anything") == label


def test_no_finding_code_is_the_standards():
    from pydicom.sr.codedict import codes as dcodes

    normal = dcodes.cid222.Normal
    assert (normal.value, normal.scheme_designator, normal.meaning) == \
        (codes.NO_FINDING_CODE.value, "SCT", codes.NO_FINDING_CODE.meaning)


def test_private_codes_keep_the_text():
    typed = codes.code_for("Rib fracture, old")
    assert typed.scheme == codes.PRIVATE_SCHEME and typed.meaning == "Rib fracture, old"
    assert len(typed.value) <= 16  # SH
    assert codes.code_for("Rib fracture, old") == typed  # the same text, the same code
    assert codes.finding_for(typed.value, typed.scheme, typed.meaning) == "Rib fracture, old"
    assert codes.mark_id_of(codes.tracking_uid("0" * 31 + "a")) == "0" * 31 + "a"
    assert codes.mark_id_of("1.2.840.1") is None


def test_read_marks_leave_your_no_finding_be():
    """A colleague's report of a nodule does not take away your "no finding" (they are two
    readings of the image); a shape of yours does."""
    key = ImageKey("sop", "1.2.3")
    yours = ImageMarks(key).with_mark(Mark.no_finding())
    theirs = Mark(Kind.RECTANGLE, ((1, 1), (9, 9)), "Nodule", "sr-x", source="B, report.dcm")
    both = yours.with_mark(theirs)
    assert both.no_finding and len(both.marks) == 2
    assert not both.with_mark(Mark.rectangle(2, 2, 5, 5, "Mass")).no_finding


# --- where reports are found -----------------------------------------------------------------

def test_a_scan_lists_reports_beside_the_images(tmp_path):
    """Folder and DICOMDIR alike: the SR is neither an image nor a skipped file; a CSV is."""
    from pydicom.fileset import FileSet

    from gradcam_viewer.imaging.scanner import scan_media

    src = samples_dir() / SOURCE
    folder = tmp_path / "folder"
    folder.mkdir()
    image = write(folder / "IM1", pydicom.dcmread(src))
    report = _foreign_report(pydicom.dcmread(src), folder / "SR1")
    (folder / "notes.csv").write_text("a,b\n")
    found = scan_media([folder])
    assert found.images == [image] and found.catalogue.reports == [report]
    assert found.skipped == 1
    index = ReportIndex.read(found.catalogue.reports)
    assert len(index.marks_for(_uid(src))) == 3

    fs = FileSet()
    fs.add(pydicom.dcmread(image))
    fs.add(pydicom.dcmread(report))
    fs.write(tmp_path / "cd")
    on_cd = scan_media([tmp_path / "cd" / "DICOMDIR"])
    assert len(on_cd.images) == 1 and len(on_cd.catalogue.reports) == 1
    assert read_report(on_cd.catalogue.reports[0]).found[0].sop_instance_uid == _uid(src)
    # an image opened on its own adds nothing, and keeps the reports found
    merged = found.catalogue.adding(scan_media([src]).catalogue)
    assert merged.reports == [report]


def test_the_log_never_names_a_report(tmp_path, caplog):
    """Retrieved objects are named by their SOP Instance UID (an identifier): unreadable or
    foreign reports are logged by the kind of problem only."""
    import logging

    uid = "1.2.826.0.1.3680043.8.498.4242"
    bad = tmp_path / f"{uid}.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00" * 40)
    with caplog.at_level(logging.DEBUG):
        index = ReportIndex.read([bad, samples_dir() / SOURCE])
    assert len(index.problems) == 2 and uid in index.problems[0]  # the user is told which
    assert caplog.records and uid not in caplog.text and SOURCE not in caplog.text
