"""The Studies panel in the viewer (pytest-qt, offscreen): a DICOMDIR written by pydicom is
shown as patient > study > series > image and paged through in the planned order."""

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from PySide6.QtCore import Qt, QThread
from PySide6.QtTest import QTest

from dicom_factory import make_dataset, write
from gui_helpers import Heartbeat, wait_result, wait_until
from media_factory import write_fileset


def _focus(win):
    for box in getattr(win, "_open_boxes", []):
        box.close()
    win.activateWindow()
    win.image_area.view.setFocus()
    QTest.qWait(10)


def _open_and_wait(win, paths):
    win.open_paths(paths)
    wait_until(lambda: not win.studies.scanning and win.session.files.current is not None, 60)
    wait_result(win, win.session.files.current)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    return write_fileset(tmp_path_factory.mktemp("cd") / "CD")


def _uid(path):
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_dicomdir_tree_and_paging_in_order(win, medium, caplog):
    caplog.set_level(logging.DEBUG)
    dicomdir, order = medium
    _focus(win)
    win.tabs.metadata.show_identifying.setChecked(False)
    _open_and_wait(win, [dicomdir])
    tree = win.studies.tree
    # patients: the one with the earliest study first; labels hide the identity
    assert tree.topLevelItemCount() == 2
    assert [tree.topLevelItem(i).text(0) for i in range(2)] == ["Patient 1", "Patient 2"]
    bob, ann = tree.topLevelItem(0), tree.topLevelItem(1)
    assert (bob.childCount(), ann.childCount()) == (1, 2)
    assert [ann.child(i).text(1) for i in range(2)] == ["2020-01-02", "2021-03-05"]
    series = [ann.child(0).child(i) for i in range(2)]
    assert [s.text(2) for s in series] == ["CR", "DX"] and [s.text(3) for s in series] == ["1", "2"]
    assert bob.child(0).child(0).text(3) == "3" and ann.text(3) == "6"
    wait_until(lambda: all(not s.icon(0).isNull() for s in win.studies._series_items), 60)
    # the DICOMDIR's series records have no description: it comes from the headers
    assert [s.text(0) for s in series] == ["#3 Cine", "#7 Follow-up PA"]
    assert len(win.studies._series_items) == 5

    # Page Down walks the images in study date / series number / instance number order
    seen = [_uid(win.session.files.current)]
    for _ in range(len(order) - 1):
        before = win.session.files.current
        QTest.keyClick(win, Qt.Key.Key_PageDown)
        wait_until(lambda before=before: win.session.files.current != before, 10)
        wait_result(win, win.session.files.current)
        seen.append(_uid(win.session.image.path))
        assert tree.currentItem().text(0).startswith("Image")
        if win.session.image.n_frames > 1:
            multi = win.session.files.current
    assert seen == [p.sop_uid for p in order]
    QTest.keyClick(win, Qt.Key.Key_PageUp)
    wait_result(win, win.session.files.paths[-2])

    # the multi-frame image gets a frame slider that opens the frame
    win.studies._clicked(win.studies._image_items[str(multi)], 0)
    wait_result(win, multi)
    assert win.studies.frames_row.isVisibleTo(win.studies)
    assert win.studies.frame_slider.maximum() == 3
    win.studies.frame_slider.setValue(3)
    wait_until(lambda: win.session.image is not None and win.session.image.frame == 2, 30)
    expected = pydicom.dcmread(multi).pixel_array[2]
    np.testing.assert_array_equal(win.session.image.pixels, expected.astype(np.float32))
    assert win.session.result is None or win.session.result.key[1] in (0, 2)

    # identifying fields follow the metadata tab's choice, and never reach the log
    win.tabs.metadata.show_identifying.setChecked(True)
    assert tree.topLevelItem(0).text(0) == "BETA BOB (PID-B)"
    win.tabs.metadata.show_identifying.setChecked(False)
    assert tree.topLevelItem(0).text(0) == "Patient 1"
    for secret in ("ALPHA", "BETA", "PID-A", "PID-B"):
        assert secret not in caplog.text


def test_reader_is_its_own_thread(win):
    reader_thread = win.studies.reader.thread()
    assert reader_thread is not win.link.thread_ and reader_thread is not QThread.currentThread()
    assert reader_thread.isRunning()


def test_gui_thread_not_blocked_by_a_500_file_folder(win, tmp_path):
    rng = np.random.default_rng(0)
    for i in range(500):
        series = i // 100
        ds = make_dataset(rng.integers(0, 4096, (32, 32)).astype(np.uint16), bits_stored=12,
                          StudyInstanceUID="1.2.3", SeriesInstanceUID=f"1.2.3.{series}",
                          SeriesNumber=series, InstanceNumber=500 - i, StudyDate="20200101")
        folder = tmp_path / f"S{series}"
        folder.mkdir(exist_ok=True)
        write(folder / f"{i}", ds)
    # as in test_gui.test_gui_thread_never_blocked: the GUI thread's own CPU time between two
    # ticks stays under 100 ms (a busy machine cannot inflate it), wall-clock gaps under 250 ms
    heart = Heartbeat()
    heart.start()
    start = heart.mark()
    _open_and_wait(win, [tmp_path])
    wait_until(lambda: all(not s.icon(0).isNull() for s in win.studies._series_items), 60)
    worked = time.perf_counter() - start
    heart.stop()
    assert len(win.session.files.paths) == 500 and len(win.studies._series_items) == 5
    assert win.studies.tree.topLevelItem(0).child(0).child(0).childCount() == 100
    # an idle machine scans the 500 headers in ~0.1 s: fewer ticks than the 14 MP test sees
    heart.assert_responsive(worked, min_ticks=5, min_work=0.05)


def test_missing_files_are_shown(win, medium, tmp_path):
    import shutil

    dicomdir, order = medium
    copy = tmp_path / "cd"
    shutil.copytree(dicomdir.parent, copy)
    victim = sorted(copy.rglob("IM*"))[0]
    victim.unlink()
    _focus(win)
    _open_and_wait(win, [copy])
    assert len(win.session.files.paths) == len(order) - 1
    assert "missing" in win.studies.status.toolTip()
    assert "1 warning" in win.studies.status.text()


def test_start_without_files_lists_the_samples_and_shows_the_default_one(win):
    """`gradcam-viewer` with no files: the samples fill the Studies panel and Page Up/Down,
    and the default sample DICOM is shown (it once bypassed the panel, which stayed empty)."""
    from gradcam_viewer.resources import samples_dir
    from gradcam_viewer.ui.app import default_sample, open_start_sample

    open_start_sample(win)
    wait_until(lambda: not win.studies.scanning and win.session.files.current is not None, 60)
    wait_result(win, default_sample())
    assert len(win.studies._series_items) >= 1
    assert win.studies.ordered_paths() == list(win.session.files.paths)
    samples = {p.resolve() for p in samples_dir().iterdir() if p.suffix in (".dcm", ".png")}
    assert {Path(p).resolve() for p in win.session.files.paths} == samples


def test_an_image_opened_on_its_own_is_listed(win, tmp_path):
    """As in DICOM viewers, every image the window shows is in the tree: a PNG and a DICOM of
    another study opened on their own join what a scan listed, and are selected."""
    from gradcam_viewer.resources import samples_dir

    _focus(win)
    first = samples_dir() / "phantom_03_nodule.dcm"
    _open_and_wait(win, [first])
    tree = win.studies.tree
    wait_until(lambda: all(not s.icon(0).isNull() for s in win.studies._series_items), 60)
    png = samples_dir() / "phantom_02_cardiomegaly_effusion.png"
    win.open_file(png)
    wait_result(win, png)
    wait_until(lambda: str(png) in win.studies._image_items, 30)
    assert tree.currentItem() is win.studies._image_items[str(png)]
    assert str(first) in win.studies._image_items  # the scanned image stays listed...
    assert all(not s.icon(0).isNull() for s in win.studies._series_items)  # ...with its icon
    others = tree.topLevelItem(tree.topLevelItemCount() - 1)
    assert others.text(0) == "Other images" and others.child(0).text(0) == png.name
    other_study = write(tmp_path / "lone.dcm", make_dataset(
        np.zeros((32, 32), np.uint16), StudyInstanceUID="1.2.3.9", SeriesInstanceUID="1.2.3.9.1",
        PatientID="LONE", PatientName="LONE^PATIENT"))
    win.open_file(other_study)
    wait_result(win, other_study)
    wait_until(lambda: str(other_study) in win.studies._image_items, 30)
    assert tree.currentItem() is win.studies._image_items[str(other_study)]
    assert len(win.studies._patient_items) == 2 and len(win.studies.catalogue.images()) == 3
    assert win.studies.status.text().startswith("3 image(s)")


@pytest.fixture(scope="module")
def png_folders(tmp_path_factory):
    """Two folders of two small PNGs each, and two PNGs on their own."""
    from PIL import Image

    root = tmp_path_factory.mktemp("pngs")
    made = {}
    for name in ("one/a", "one/b", "two/c", "two/d", "lone/e", "lone/f"):
        path = root / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((16, 16), 40 * len(made), np.uint8)).save(path)
        made[name] = path
    return root / "one", root / "two", [made["lone/e"], made["lone/f"], made["one/a"]]


def _settle(qtbot, panel):
    """Until the scan is read and every add it or an image asked for has come back: the
    reader thread runs its requests in order, so a call queued after them runs when they are
    done, their replies queued to this thread before it."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    for _ in range(2):  # the scan's end may ask for adds; what they bring asks for nothing
        qtbot.waitUntil(lambda: not panel.scanning, timeout=30_000)
        done = threading.Event()
        QTimer.singleShot(0, panel.reader, done.set)
        qtbot.waitUntil(done.is_set, timeout=30_000)
        QApplication.processEvents()


@example(steps=[("scan", 0), ("show", 0), ("wait", None)])  # the order that lost the image
@example(steps=[("show", 0), ("scan", 1), ("show", 1)])
@example(steps=[("scan", 0), ("show", 0), ("scan", 1), ("show", 2)])
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.tuples(st.just("scan"), st.integers(0, 1)),
                          st.tuples(st.just("show"), st.integers(0, 2)),
                          st.tuples(st.just("wait"), st.none())), min_size=1, max_size=6))
def test_an_image_shown_during_a_scan_is_listed_when_it_ends(qtbot, png_folders, steps):
    """The panel (its own reader thread, real scans) in any order of "scan starts / image shown
    / scan finishes": afterwards it lists the last scan's images plus every image shown since
    that scan started. (An image shown while a scan ran was never added before.)"""
    from gradcam_viewer.ui.studies_panel import StudiesPanel

    folders, images = png_folders[:2], png_folders[2]
    panel = StudiesPanel()
    qtbot.addWidget(panel)
    expected: set[Path] = set()
    try:
        for kind, arg in steps:
            if kind == "scan":
                panel.open([folders[arg]])
                expected = set(folders[arg].glob("*.png"))
            elif kind == "show":
                panel.show_image(images[arg], 0, 1)
                expected.add(images[arg])
            else:
                qtbot.waitUntil(lambda: not panel.scanning, timeout=30_000)
        expected_names = {str(p) for p in expected}
        _settle(qtbot, panel)
        assert set(panel._image_items) == expected_names
        assert {str(p) for p in panel.catalogue.paths()} == expected_names
    finally:
        panel.shutdown()


def test_an_image_opened_in_the_window_while_a_folder_is_scanned_is_listed(win, png_folders,
                                                                            monkeypatch):
    """MainWindow.open_file while the panel's thread scans a folder (held until the image is
    shown): when the scan ends, the image joins the folder's images in the tree."""
    from gradcam_viewer import imaging

    folder, lone = png_folders[0], png_folders[2][0]
    release, scanning = threading.Event(), threading.Event()
    real_scan = imaging.scan_media

    def held_scan(paths, **kwargs):
        if list(paths) == [folder]:
            scanning.set()
            release.wait(60)
        return real_scan(paths, **kwargs)

    monkeypatch.setattr(imaging, "scan_media", held_scan)
    win.open_paths([folder])
    wait_until(scanning.is_set, 30)
    win.open_file(lone)
    wait_result(win, lone)
    assert win.studies.scanning and str(lone) not in win.studies._image_items
    release.set()
    wait_until(lambda: not win.studies.scanning, 30)
    expected = {str(p) for p in [*folder.glob("*.png"), lone]}
    wait_until(lambda: expected <= set(win.studies._image_items), 30)
    assert set(win.studies._image_items) == expected


def test_the_opened_image_is_decoded_once_and_its_series_gets_a_thumbnail(win, medium,
                                                                          monkeypatch):
    """The window decodes the image it opens; the reader makes that series' thumbnail from
    the window's image instead of decoding the same file again at the same time."""
    from gradcam_viewer import imaging

    real, decoded = imaging.load_image, []

    def spy(path, *args, **kwargs):
        decoded.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(imaging, "load_image", spy)
    win.session.ahead.on = False  # (a neighbour read ahead would be one more decode)
    dicomdir, _order = medium
    _open_and_wait(win, [dicomdir])
    wait_until(lambda: all(not s.icon(0).isNull() for s in win.studies._series_items), 60)
    assert decoded.count(win.session.files.current) == 1
    assert len(decoded) == len(set(decoded)) == len(win.studies._series_items)
