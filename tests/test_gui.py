"""The viewer, offscreen, on the bundled demo model and samples (pytest-qt)."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest

from gui_helpers import wait_result, wait_until
from gradcam_viewer.resources import samples_dir

SAMPLE = samples_dir() / "phantom_02_cardiomegaly_effusion.dcm"
SAMPLE_PNG = samples_dir() / "phantom_03_nodule.png"




def _focus(win):
    """Close message boxes left by earlier tests so the window gets its shortcuts."""
    for box in getattr(win, "_open_boxes", []):
        box.close()
    win.activateWindow()
    win.view.setFocus()
    QTest.qWait(10)


def _open(win, path):
    win.open_file(Path(path))
    return wait_result(win, path)


def test_sample_fills_label_list_with_engine_probabilities(win, reference):
    bundle, run = reference
    result = _open(win, SAMPLE)
    expected = run(SAMPLE).probabilities[0]
    shown = win.labels.shown_probabilities()
    assert set(shown) == set(bundle.labels)
    np.testing.assert_allclose([shown[n] for n in bundle.labels], expected, atol=1e-5)
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)
    # sorted by probability, highest first
    values = list(shown.values())
    assert values == sorted(values, reverse=True)
    assert win.banner.isVisible() and "NOT FOR DIAGNOSTIC USE" in win.banner.text()


def test_overlay_pixels(win):
    _open(win, SAMPLE)
    label = win.labels.current_label()
    heat = win.result.display_map(label, win.image.size)
    display = np.repeat(win.display[..., None], 3, axis=-1)
    win.opacity.setValue(0)
    QTest.qWait(20)
    np.testing.assert_array_equal(win.view.render_scene(), display)
    win.threshold.setValue(20)
    win.opacity.setValue(60)
    QTest.qWait(20)
    shown = win.view.render_scene().astype(int)
    hot = heat > 0.8
    cold = heat < 0.2
    assert hot.sum() > 100
    assert np.abs(shown[hot] - display[hot]).sum(axis=-1).mean() > 20
    np.testing.assert_array_equal(shown[cold], display[cold])


def test_switching_label_needs_no_worker(win):
    _focus(win)
    _open(win, SAMPLE)
    win.opacity.setValue(60)
    before_requests = win.requests_sent
    first = win.labels.current_label()
    pixels_a = win.view.render_scene()
    QTest.keyClick(win, Qt.Key.Key_Down)
    QTest.qWait(20)
    assert win.labels.current_label() != first
    assert not np.array_equal(win.view.render_scene(), pixels_a)
    win.colormap.setCurrentText("jet")
    win.threshold.setValue(40)
    win.contours.setChecked(True)
    win.contours.setChecked(False)
    win.colormap.setCurrentText("inferno")
    QTest.keyClick(win, Qt.Key.Key_Up)
    assert win.requests_sent == before_requests


def test_stale_result_is_dropped(win):
    other = samples_dir() / "phantom_05_pneumothorax.dcm"
    win.open_file(SAMPLE)
    win.open_file(other)  # supersedes the first before it is done
    result = wait_result(win, other)
    assert win.image.path == other
    stale = type(result)(key=(str(SAMPLE),) + result.key[1:], probabilities=result.probabilities * 0,
                         heatmaps=result.heatmaps, layer=result.layer, method=result.method,
                         score=result.score, seconds=0)
    win._explained(1, stale)  # an old request id arriving late
    assert win.result is result and win.image.path == other


def test_corrupt_file_then_good_file(win, tmp_path):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"DICM" * 10 + bytes(range(256)) * 3)
    win.last_error = ""
    win.open_file(bad)
    wait_until(lambda: "broken.dcm" in win.last_error)
    _open(win, SAMPLE_PNG)
    assert win.image.path == SAMPLE_PNG


def test_broken_model_keeps_previous(win, tmp_path):
    bad = tmp_path / "corrupt.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    name = win.model.name
    win.last_error = ""
    win.load_model("keras", str(bad))
    wait_until(lambda: "corrupt.keras" in win.last_error, 60)
    assert win.model.name == name and "still in use" in win.last_error
    _open(win, samples_dir() / "phantom_04_mass_consolidation.png")


def test_worker_exception_reaches_user_and_next_request_works(win, monkeypatch):
    _open(win, SAMPLE)
    explainer = win.worker.explainer
    real = explainer.explain

    def boom(*args, **kwargs):
        monkeypatch.setattr(explainer, "explain", real)  # only the first call fails
        raise RuntimeError("injected failure")

    monkeypatch.setattr(explainer, "explain", boom)
    win.last_error = ""
    win.method_box.setCurrentIndex(1)  # Grad-CAM++ is not cached: a new worker call
    wait_until(lambda: "injected failure" in win.last_error, 60)
    win.method_box.setCurrentIndex(2)
    wait_until(lambda: win.result is not None and win.result.method == "hirescam", 60)
    win.method_box.setCurrentIndex(0)


def test_gui_thread_never_blocked(win):
    """A 10 ms heartbeat on the GUI thread keeps ticking while the worker loads and explains."""
    gaps = []
    last = [time.perf_counter()]

    def beat():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(beat)
    timer.start(10)
    worked = 0.0
    for path in sorted(samples_dir().glob("*.dcm")):
        win.cache.clear()
        last[0] = start = time.perf_counter()
        _open(win, path)
        worked += time.perf_counter() - start
    timer.stop()
    assert len(gaps) > 10 and worked > 0.2
    assert max(gaps) < 0.1, f"GUI blocked for {max(gaps) * 1000:.0f} ms"


def test_shortcuts_invert_fit_and_navigation(win):
    _focus(win)
    win.open_paths([samples_dir()])  # scanned in the background
    wait_until(lambda: win.files.current is not None and not win.studies.scanning, 30)
    wait_result(win, win.files.current)
    first = win.files.current
    inverted = win.inverted
    QTest.keyClick(win, Qt.Key.Key_I)
    assert win.inverted != inverted
    QTest.keyClick(win, Qt.Key.Key_Space)
    assert win.inverted == inverted
    QTest.keyClick(win, Qt.Key.Key_Plus)
    zoomed = win.view.zoom()
    QTest.keyClick(win, Qt.Key.Key_Equal)
    assert win.view.zoom() < zoomed
    QTest.keyClick(win, Qt.Key.Key_PageDown)
    wait_result(win, win.files.current)
    assert win.files.current != first and win.files.index == 1
    QTest.keyClick(win, Qt.Key.Key_PageUp)
    wait_result(win, first)
    QTest.keyClick(win, Qt.Key.Key_O)
    assert not win.overlay_on
    QTest.keyClick(win, Qt.Key.Key_O)
    assert win.overlay_on


def test_right_drag_changes_window_level(win):
    _open(win, SAMPLE)
    before = win.window_
    display_before = win.display.copy()
    vp = win.view.viewport()
    centre = vp.rect().center()
    QTest.mousePress(vp, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, centre)
    QTest.mouseMove(vp, centre + QPoint(-80, 30))
    QTest.mouseRelease(vp, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier,
                       centre + QPoint(-80, 30))
    assert win.window_.width < before.width and win.window_.center > before.center
    assert not np.array_equal(win.display, display_before)
    assert f"W {win.window_.width:.0f}" in win.status_wl.text()


def test_metadata_hides_identifying_fields(win):
    _open(win, SAMPLE)
    shown = " ".join(win.metadata.shown_values())
    assert "DX" in shown and "PHANTOM^DEMO" not in shown
    win.metadata.show_identifying.setChecked(True)
    assert "PHANTOM^DEMO" in " ".join(win.metadata.shown_values())
    win.metadata.show_identifying.setChecked(False)


def test_exports(win, tmp_path):
    from gradcam_viewer.ui import exporting

    _open(win, SAMPLE)
    png = exporting.export_view_png(win, tmp_path / "view.png")
    from PIL import Image

    with Image.open(png) as im:
        assert im.width == win.image.size[1] + exporting.PANEL
    assert b"PHANTOM" not in png.read_bytes()
    csv_path = exporting.export_predictions(win, tmp_path / "p.csv", "csv")
    header, row = csv_path.read_text().splitlines()
    assert header.split(",")[5:-2] == win.model.labels and row.startswith(f"{SAMPLE.name},1,")
    assert header.endswith(",values,ood_flagged") and row.split(",")[-2] == "probabilities"
    assert row.split(",")[-1] == ("true" if win.result.ood["flagged"] else "false")
    js = exporting.export_predictions(win, tmp_path / "p.json", "json")
    record = json.loads(js.read_text())
    assert set(record["probabilities"]) == set(win.model.labels)
    assert "PHANTOM" not in js.read_text()
    win.act_include_phi.setChecked(True)
    js2 = exporting.export_predictions(win, tmp_path / "p2.json", "json")
    assert "PHANTOM^DEMO" in js2.read_text()
    win.act_include_phi.setChecked(False)
    with pytest.raises(FileExistsError):
        exporting.export_predictions(win, tmp_path / "p.json", "json")


def test_model_card(win):
    from PySide6.QtWidgets import QTextBrowser

    win.show_model_card()
    browser = win._last_dialog.findChild(QTextBrowser)
    html = browser.toPlainText()
    assert "NOT FOR DIAGNOSTIC USE" in html and "Pointing game" in html
    assert "Opened with: Keras 3." in html and ".keras file" in html  # which loader was used
    win._last_dialog.close()


SPY = r'''
import sys, threading, time, importlib.abc
seen = []
class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "tensorflow" and not seen:
            seen.append(threading.current_thread() is threading.main_thread())
        return None
sys.meta_path.insert(0, Spy())
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gradcam_viewer.ui.main_window import MainWindow
w = MainWindow()
w.show()
app.processEvents()
before = "tensorflow" in sys.modules
w.load_model("demo", "")
end = time.time() + 180
while w.model is None and time.time() < end:
    app.processEvents()
    time.sleep(0.01)
print(before, seen, w.model is not None)
w.shutdown()
'''


def test_tensorflow_is_imported_by_the_worker_not_the_gui_thread():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", SPY], capture_output=True, text=True,
                         timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "False [False] True", out.stderr[-2000:]
