"""Marks and DICOM in the window: reports found in an opened folder are shown read-only on
their images; File > Export marks as DICOM SR and Send marks to PACS write and send the
report of your marks (a real Orthanc), which comes back as your own marks, not a copy."""

import shutil
import urllib.request

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from dicom_checks import content_items as _items, dciodvfy
from gradcam_viewer.marks.shapes import Kind, Mark
from gradcam_viewer.resources import samples_dir
from gui_helpers import wait_result, wait_until
from orthanc_server import AET
from test_marks_sr import _foreign_report

SAMPLE = "phantom_03_nodule.dcm"


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_VIEWER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("GRADCAM_VIEWER_OUTBOX", str(tmp_path / "outbox"))
    return tmp_path


def _open_folder(win, folder, image):
    before = win.marks_dicom.reading
    win.open_paths([folder])
    # the reports are read after the scan, off the GUI thread
    wait_until(lambda: win.marks_dicom.reading > before and not win.marks_dicom.jobs.relays, 60)
    wait_result(win, image)


def test_reports_in_an_opened_folder_are_shown_read_only(win, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    image = shutil.copy(samples_dir() / SAMPLE, folder / "IM1")
    _foreign_report(pydicom.dcmread(image), folder / "SR1", observer="Doe^John")
    _open_folder(win, folder, image)
    marks = win.marking.editor.marks
    read = [m for m in marks.marks if m.read_only]
    assert [(m.kind, m.finding) for m in read] == [
        (Kind.RECTANGLE, "Effusion"), (Kind.ELLIPSE, "Nodule"), (Kind.POLYGON, "Mass")]
    assert all("John Doe" in m.source for m in read)
    # reading them was not an edit of yours: Ctrl+Z has nothing to take back
    QTest.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [m for m in win.marking.editor.marks.marks if m.read_only] == read
    # read-only: deleting does nothing; an editable copy can be made and changed
    win.marking.editor.selected = read[1].id
    assert not win.marking.editor.delete()
    copy = win.marking.editor.copy_selected()
    assert copy is not None and not copy.read_only and copy.finding == "Nodule"
    # showing the image again does not add them twice
    win.marks_dicom.show_image(win.session.image)
    assert len([m for m in win.marking.editor.marks.marks if m.read_only]) == 3


def test_export_marks_as_sr_and_read_them_back_as_your_own(win, tmp_path):
    from gradcam_viewer.config import save_operator

    save_operator("Smith^Jane")  # as Settings > Operator name keeps it
    folder = tmp_path / "study"
    folder.mkdir()
    image = shutil.copy(samples_dir() / SAMPLE, folder / "IM1")
    win.open_file(image)
    wait_result(win, image)
    win.marking.editor.put(Mark.rectangle(300, 310, 420, 400, "Nodule"))
    win.marking.editor.put(Mark.polygon([(100, 100), (200, 120), (150, 220)], "Rib lesion"))
    dialog = _confirmation(win, lambda: win.pacs.export_dicom(
        tmp_path / "out", objects=win.marks_dicom.objects))
    assert "PHANTOM^DEMO" in dialog.text.text() and "Comprehensive 3D SR" in dialog.text.text()
    dialog.accept()
    [sr] = sorted((tmp_path / "out").glob("*.dcm"))
    assert sr.name == "IM1_MARKS.dcm"
    assert dciodvfy(sr)[0] == []
    ds = pydicom.dcmread(sr)
    assert ds.StudyInstanceUID == pydicom.dcmread(image).StudyInstanceUID
    observer = [i for i in _items(ds) if i.ValueType == "PNAME"]
    assert [str(i.PersonName) for i in observer] == ["Smith^Jane"]  # Settings > Operator name
    # the report opened beside its image: your own marks, not read-only copies of them
    shutil.copy(sr, folder / "SR1")
    _open_folder(win, folder, image)
    marks = win.marking.editor.marks.marks
    assert [m.finding for m in marks] == ["Nodule", "Rib lesion"]
    assert not any(m.read_only for m in marks)


def test_each_frame_of_a_multiframe_image_gets_its_own_report_file(win, tmp_path):
    """File > Export marks as DICOM SR on frame 1, then on frame 2 of one image: two files, as
    `marks export` names them, each the report of its own frame."""
    from dicom_factory import write_multiframe

    image, source = write_multiframe(tmp_path / "MF1", frames=3, size=96)
    out = tmp_path / "out"
    for frame, finding in ((0, "Nodule"), (1, "Mass")):
        win.open_file(image, frame)
        wait_result(win, image)
        assert win.session.image.frame == frame
        win.marking.editor.put(Mark.rectangle(10, 12, 40, 50, finding))
        _confirmation(win, lambda: win.pacs.export_dicom(
            out, objects=win.marks_dicom.objects)).accept()
        wait_until(lambda: win.pacs.dialog is None or not win.pacs.dialog.isVisible(), 30)
    files = sorted(p.name for p in out.glob("*.dcm"))
    assert files == ["MF1_MARKS_f1.dcm", "MF1_MARKS_f2.dcm"]
    for name, frame, finding in (("MF1_MARKS_f1.dcm", 1, "Nodule"),
                                 ("MF1_MARKS_f2.dcm", 2, "Mass")):
        ds = pydicom.dcmread(out / name)
        refs = [i for i in _items(ds) if "ReferencedSOPSequence" in i]
        assert {int(r.ReferencedSOPSequence[0].ReferencedFrameNumber) for r in refs} == {frame}
        assert finding in str(ds.ContentSequence)


def test_a_png_has_no_marks_report(win, tmp_path):
    sample = samples_dir() / "phantom_03_nodule.png"
    win.open_file(sample)
    wait_result(win, sample)
    win.marking.editor.put(Mark.rectangle(3, 3, 30, 30, "Nodule"))
    win.messages.last_error = ""
    win.pacs.export_dicom(tmp_path / "o", objects=win.marks_dicom.objects)
    assert "not a DICOM image" in win.messages.last_error and "CSV" in win.messages.last_error
    assert win.pacs.dialog is None and not (tmp_path / "o").exists()


def test_send_marks_to_pacs_and_retrieve_them(win, config, orthanc, tmp_path):
    from gradcam_viewer.pacs import load_nodes, parse_node, save_nodes

    save_nodes([parse_node(f"{AET}@127.0.0.1:{orthanc.dicom_port}")])
    sample = samples_dir() / "phantom_05_pneumothorax.dcm"
    win.open_file(sample)
    wait_result(win, sample)
    mark = Mark.ellipse_in(100, 100, 300, 260, "Pneumothorax")
    win.marking.editor.put(mark)
    confirm = _confirmation(win, lambda: win.pacs.send(objects=win.marks_dicom.objects))
    assert confirm.chosen_node() == load_nodes()[0]
    win.pacs.last_send_report = None
    confirm.accept()
    wait_until(lambda: win.pacs.last_send_report is not None, 60)
    assert win.pacs.last_send_report.ok and len(win.pacs.last_send_report.sent) == 1
    src = pydicom.dcmread(sample)
    study = orthanc.lookup(src.StudyInstanceUID)
    series = orthanc.rest("GET", f"/studies/{study[0]['ID']}/series")
    marks_series = [s for s in series if s["MainDicomTags"].get("SeriesDescription") == "Marks"]
    assert len(marks_series) == 1 and len(marks_series[0]["Instances"]) == 1
    # the study as a retrieve leaves it: its objects in a folder (with the image, which the
    # test's Orthanc does not hold); another reader opens it
    folder = tmp_path / "retrieved"
    folder.mkdir()
    image = shutil.copy(sample, folder / "image.dcm")
    for item in orthanc.rest("GET", f"/studies/{study[0]['ID']}/instances"):
        url = f"http://127.0.0.1:{orthanc.http_port}/instances/{item['ID']}/file"
        with urllib.request.urlopen(url, timeout=10) as r:
            (folder / f"{item['ID']}.dcm").write_bytes(r.read())
    win.marking.editor.store.folder = tmp_path / "another reader's marks"
    _open_folder(win, folder, image)
    [got] = win.marking.editor.marks.marks
    assert got.read_only and got.kind is Kind.ELLIPSE and got.finding == "Pneumothorax"
    np.testing.assert_allclose(got.points, mark.points, atol=1e-4)


def _confirmation(win, open_it):
    win.pacs.dialog = None
    open_it()
    wait_until(lambda: win.pacs.dialog is not None, 60)
    return win.pacs.dialog
