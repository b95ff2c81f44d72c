"""`gradcam-viewer marks export`: a week of marks handed on at once. On a study laid out as a
PACS export (series folders, files without suffix, a multi-frame image, a PNG beside them), one
report per marked image frame, in the inputs' folders mirrored, each passing dciodvfy and read
back (our reader) as the marks in the store; images with only other readers' marks get none;
sent to a real Orthanc through the outbox."""

import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicom_checks import dciodvfy
from dicom_factory import write_multiframe
from gradcam_viewer.cli import main
from gradcam_viewer.marks.shapes import ImageKey, Kind, Mark
from gradcam_viewer.marks.sr_read import read_report
from gradcam_viewer.marks.store import MarkStore
from gradcam_viewer.resources import samples_dir
from pacs_studies import SeedStudy

THEIRS = Mark(Kind.RECTANGLE, ((1, 1), (9, 9)), "Mass", "sr-x", source="Roe, SR9")


@pytest.fixture
def week(tmp_path):
    """A study folder, the store with marks on some of its images, and what each report must
    hold: {relative output path: (image SOP Instance UID, frame, own marks)}."""
    study = tmp_path / "export" / "STUDY1"
    seed = SeedStudy("Week^Marks", "MK-001", "ACCMK1", "20240902", "Chest", "DX", series=2,
                     per_series=2)
    for n, path in enumerate(sorted(seed.write(tmp_path / "seed"))):
        target = study / f"SE{n // 2 + 1}" / f"IM00000{n % 2 + 1}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
    bare = pydicom.dcmread(study / "SE2" / "IM000002")  # as some exports write: no preamble
    del bare.file_meta
    bare.preamble = None
    pydicom.dcmwrite(study / "SE2" / "IM000002", bare, implicit_vr=True, little_endian=True,
                     enforce_file_format=False)
    (study / "SE3").mkdir()
    mf, mf_ds = write_multiframe(study / "SE3" / "IM000001")
    shutil.copy(samples_dir() / "phantom_03_nodule.png", study / "chest.png")
    store = MarkStore(tmp_path / "store")

    def uid(rel):
        header = pydicom.dcmread(study / rel, stop_before_pixels=True, force=True)
        return str(header.SOPInstanceUID)

    def mark(rel, frame, *marks):
        key = ImageKey("sop", uid(rel), frame)
        current = store.load(key, Path(rel).name, (64, 64))
        for m in marks:
            current = current.with_mark(m)
        store.save(current)
        return [m for m in marks if not m.read_only]

    want = {
        "SE1/IM000001_MARKS.dcm": (uid("SE1/IM000001"), 0, mark(
            "SE1/IM000001", 0, Mark.rectangle(4.5, 6, 30, 40.25, "Nodule"),
            Mark.ellipse_in(20, 10, 60, 50, "Effusion"), THEIRS)),
        "SE2/IM000001_MARKS.dcm": (uid("SE2/IM000001"), 0, mark("SE2/IM000001", 0,
                                                                 Mark.no_finding())),
        "SE2/IM000002_MARKS.dcm": (uid("SE2/IM000002"), 0, mark(
            "SE2/IM000002", 0, Mark.rectangle(0, 0, 64, 20, "Pneumothorax"))),
        "SE3/IM000001_MARKS_f2.dcm": (str(mf_ds.SOPInstanceUID), 1, mark(
            "SE3/IM000001", 1, Mark.polygon([(10, 10), (50, 12), (30, 55)], "Mass"))),
    }
    mark("SE1/IM000002", 0, THEIRS)  # another reader's only: nothing of yours to report
    return study, store.folder, want


def test_one_report_per_marked_image_frame_each_valid_and_read_back(week, tmp_path, capsys):
    study, store, want = week
    out = tmp_path / "reports"
    code = main(["marks", "export", str(study), "--sr", str(out), "--observer", "Doe^Jane",
                 "--marks", str(store)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "4 of 5 DICOM image(s) have marks of yours: 4 report(s) written into" in err
    assert "note: 1 input(s) are not DICOM images" in err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(want)
    for rel, (uid, frame, marks) in want.items():
        path = out / rel
        errors, _ = dciodvfy(path)
        assert errors == [], (rel, errors)
        report = read_report(path)
        assert report.observer == "Jane Doe"
        got = [f for f in report.found]
        assert [(f.sop_instance_uid, f.frame) for f in got] == [(uid, frame)] * len(marks)
        for found, mark in zip(got, marks, strict=True):
            assert (found.mark.kind, found.mark.finding) == (mark.kind, mark.finding)
            np.testing.assert_allclose(found.mark.points, mark.points, atol=1e-4)
        ds = pydicom.dcmread(path)
        assert ds.StudyInstanceUID == pydicom.dcmread(
            study / rel.split("_MARKS")[0], stop_before_pixels=True, force=True).StudyInstanceUID
    # again: nothing replaced without --force, then replaced with it
    assert main(["marks", "export", str(study), "--sr", str(out), "--marks", str(store)]) == 1
    assert "already exists (use --force to replace it)" in capsys.readouterr().err
    assert main(["marks", "export", str(study), "--sr", str(out), "--marks", str(store),
                 "--force"]) == 0


def test_reports_sent_to_the_pacs_through_the_outbox(week, orthanc, tmp_path, monkeypatch,
                                                     capsys):
    from gradcam_viewer.pacs import Outbox, parse_node
    from orthanc_server import AET

    monkeypatch.setenv("GRADCAM_VIEWER_OUTBOX", str(tmp_path / "outbox"))
    study, store, want = week
    target = f"{AET}@127.0.0.1:{orthanc.dicom_port}"
    code = main(["marks", "export", str(study), "--send", target, "--marks", str(store)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "4 of 4 object(s) sent" in err
    assert Outbox(tmp_path / "outbox").pending(parse_node(target)) == []
    # the PACS holds the reports in the images' studies, and they mark the images marked
    marked = set()
    studies = {str(pydicom.dcmread(study / rel.split("_MARKS")[0],
                                   stop_before_pixels=True, force=True).StudyInstanceUID)
               for rel in want}
    for study_uid in studies:
        (found,) = orthanc.lookup(study_uid)
        for instance in orthanc.rest("GET", f"/studies/{found['ID']}/instances"):
            path = tmp_path / f"{instance['ID']}.dcm"
            with urllib.request.urlopen(f"http://127.0.0.1:{orthanc.http_port}/instances/"
                                        f"{instance['ID']}/file", timeout=10) as r:
                path.write_bytes(r.read())
            marked |= {(f.sop_instance_uid, f.frame) for f in read_report(path).found}
    assert marked == {(uid, frame) for uid, frame, _ in want.values()}


def test_where_the_reports_go_must_be_said(week, capsys):
    study, store, _ = week
    assert main(["marks", "export", str(study), "--marks", str(store)]) == 2
    assert "--sr DIR, --send AET@HOST:PORT" in capsys.readouterr().err


def test_the_observer_defaults_to_the_operator_the_window_saved(week, tmp_path, capsys):
    """Without --observer the reports name the operator set in the viewer: first as an older
    viewer kept it (its QSettings, moved once into the configuration folder), then as
    Settings > Operator name saves it; --observer still wins."""
    from PySide6.QtCore import QSettings

    from gradcam_viewer.config import load_operator
    from gradcam_viewer.ui.marks_dicom import OPERATOR_KEY, migrate_operator

    study, store, _ = week
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(OPERATOR_KEY, "Roe^Ann")
    migrate_operator(settings)
    assert load_operator() == "Roe^Ann" and not settings.contains(OPERATOR_KEY)
    settings.setValue(OPERATOR_KEY, "Stale^Name")  # the name already moved wins
    migrate_operator(settings)
    assert load_operator() == "Roe^Ann"

    def observers(*extra):
        out = tmp_path / f"reports{len(extra)}"
        assert main(["marks", "export", str(study), "--sr", str(out), "--marks", str(store),
                     *extra]) == 0, capsys.readouterr().err
        return {read_report(p).observer for p in out.rglob("*.dcm")}

    assert observers() == {"Ann Roe"}
    assert observers("--observer", "Doe^Jane") == {"Jane Doe"}
