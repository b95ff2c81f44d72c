"""The viewer, offscreen, on the bundled demo model and samples (pytest-qt). Every test has a
window of its own (the `win` fixture) and waits with qtbot, never with sleeps."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from gradcam_viewer.resources import samples_dir
from gui_helpers import Heartbeat, wait_shown

SAMPLE = samples_dir() / "phantom_02_cardiomegaly_effusion.dcm"
SAMPLE_PNG = samples_dir() / "phantom_03_nodule.png"


def _focus(win):
    win.activateWindow()
    win.image_area.view.setFocus()


def _open(qtbot, win, path):
    win.open_file(Path(path))
    result = wait_shown(qtbot, win, path)
    qtbot.waitUntil(win.drawn)
    return result


class _Requests:
    """Counts what the window asks of the worker."""

    def __init__(self, win):
        self.count = 0
        for signal in (win.link.request_open, win.link.request_explain, win.link.request_model):
            signal.connect(self._one)

    def _one(self, *_args):
        self.count += 1


def test_sample_fills_label_list_with_engine_probabilities(win, qtbot, reference):
    bundle, run = reference
    result = _open(qtbot, win, SAMPLE)
    expected = run(SAMPLE).probabilities[0]
    shown = win.findings.labels.shown_probabilities()
    assert set(shown) == set(bundle.labels)
    np.testing.assert_allclose([shown[n] for n in bundle.labels], expected, atol=1e-5)
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)
    # sorted by probability, highest first
    values = list(shown.values())
    assert values == sorted(values, reverse=True)
    assert win.image_area.banner.isVisible() and "NOT FOR DIAGNOSTIC USE" in win.image_area.banner.text()


def test_overlay_pixels(win, qtbot):
    _open(qtbot, win, SAMPLE)
    label = win.findings.labels.current_label()
    heat = win.session.cache.display_map(win.session.result, label, win.session.image.size)
    display = np.repeat(win.image_area.display[..., None], 3, axis=-1)
    win.controls.opacity.setValue(0)
    np.testing.assert_array_equal(win.image_area.view.render_scene(), display)
    win.controls.threshold.setValue(20)
    win.controls.opacity.setValue(60)
    qtbot.waitUntil(win.drawn)
    shown = win.image_area.view.render_scene().astype(int)
    hot = heat > 0.8
    cold = heat < 0.2
    assert hot.sum() > 100
    assert np.abs(shown[hot] - display[hot]).sum(axis=-1).mean() > 20
    np.testing.assert_array_equal(shown[cold], display[cold])


def test_switching_label_needs_no_worker(win, qtbot):
    _focus(win)
    _open(qtbot, win, SAMPLE)
    win.controls.opacity.setValue(60)
    requests = _Requests(win)
    first = win.findings.labels.current_label()
    pixels_a = win.image_area.view.render_scene()
    QTest.keyClick(win, Qt.Key.Key_Down)
    qtbot.waitUntil(win.drawn)
    assert win.findings.labels.current_label() != first
    assert not np.array_equal(win.image_area.view.render_scene(), pixels_a)
    win.controls.colormap.setCurrentText("jet")
    win.controls.threshold.setValue(40)
    win.controls.contours.setChecked(True)
    win.controls.contours.setChecked(False)
    win.controls.colormap.setCurrentText("inferno")
    QTest.keyClick(win, Qt.Key.Key_Up)
    QTest.keyClick(win, Qt.Key.Key_G)  # the grid of all findings needs no model work either
    assert win.image_area.stack.currentWidget() is win.image_area.grid
    QTest.keyClick(win, Qt.Key.Key_G)
    assert requests.count == 0


def _late_result_of_the_first_file(win, qtbot):
    """Open two files, then let the worker deliver, late, a result made for the first one."""
    other = samples_dir() / "phantom_05_pneumothorax.dcm"
    first = _open(qtbot, win, SAMPLE)
    second = _open(qtbot, win, other)
    with qtbot.waitSignal(win.worker.explained, timeout=5000):
        win.worker.explained.emit(1, first)  # through the real queued connection
    qtbot.wait(20)
    return other, second


def test_stale_result_is_dropped(win, qtbot):
    other, second = _late_result_of_the_first_file(win, qtbot)
    assert win.session.result is second and win.session.image.path == other
    assert win.findings.labels.shown_probabilities()[win.session.model.labels[0]] == pytest.approx(
        float(second.probabilities[0]), abs=1e-6)


def test_stale_result_test_fails_without_the_protection(win, qtbot, monkeypatch):
    """The test above guards something: with results accepted whatever they belong to, the
    late result of the first file is drawn over the second one."""
    monkeypatch.setattr(type(win.session), "belongs", lambda self, result: True)
    other, second = _late_result_of_the_first_file(win, qtbot)
    assert win.session.result is not second and win.session.result.key[0] == str(SAMPLE)


def test_corrupt_file_then_good_file(win, qtbot, tmp_path):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"DICM" * 10 + bytes(range(256)) * 3)
    win.open_file(bad)
    qtbot.waitUntil(lambda: "broken.dcm" in win.messages.last_error)
    assert win.session.image is None and win.image_area.view.base.pixmap().isNull()
    _open(qtbot, win, SAMPLE_PNG)
    assert win.session.image.path == SAMPLE_PNG


def test_broken_model_keeps_previous(win, qtbot, tmp_path):
    bad = tmp_path / "corrupt.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    name = win.session.model.name
    win.load_model("keras", str(bad))
    qtbot.waitUntil(lambda: "corrupt.keras" in win.messages.last_error, timeout=60_000)
    assert win.session.model.name == name and "still in use" in win.messages.last_error
    _open(qtbot, win, samples_dir() / "phantom_04_mass_consolidation.png")


def test_worker_exception_reaches_user_and_next_request_works(win, qtbot, monkeypatch):
    _open(qtbot, win, SAMPLE)
    explainer = win.worker.explainer
    real = explainer.explain

    def boom(*args, **kwargs):
        monkeypatch.setattr(explainer, "explain", real)  # only the first call fails
        raise RuntimeError("injected failure")

    monkeypatch.setattr(explainer, "explain", boom)
    win.controls.method_box.setCurrentIndex(1)  # Grad-CAM++ is not cached: a new worker call
    qtbot.waitUntil(lambda: "injected failure" in win.messages.last_error, timeout=60_000)
    assert not win.session.busy
    win.controls.method_box.setCurrentIndex(2)
    wait_shown(qtbot, win, SAMPLE, "hirescam", 60)


@pytest.fixture(scope="session")
def big_dicoms(tmp_path_factory):
    """Two 14 MP (4664x3064) 16-bit radiograph-like DICOMs written by the test itself."""
    from dicom_factory import make_dataset, write

    folder = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(12)
    yy, xx = np.mgrid[0:3064, 0:4664]
    paths = []
    for i in range(2):
        body = 1800 + 1200 * np.exp(-(((xx - 2332 - 300 * i) / 1500) ** 2
                                      + ((yy - 1532) / 1100) ** 2))
        pixels = (body + rng.normal(0, 40, body.shape)).clip(0, 4095).astype(np.uint16)
        ds = make_dataset(pixels, bits_stored=12, WindowCenter=2400, WindowWidth=2400)
        paths.append(write(folder / f"big_{i}.dcm", ds))
    return paths


def test_gui_thread_never_blocked(win, qtbot, big_dicoms):
    """A 10 ms heartbeat on the GUI thread keeps ticking while the worker loads and explains
    14 MP images and the window shows them with their heatmaps.

    Between two ticks the GUI thread may not work for 100 ms (its own CPU time, which another
    program on a busy machine cannot inflate), nor be held up for 250 ms of wall time (which
    would catch a worker holding the GIL)."""
    heart = Heartbeat()
    heart.start()
    worked = 0.0
    for path in big_dicoms + [SAMPLE]:
        start = heart.mark()
        _open(qtbot, win, path)
        QTest.keyClick(win, Qt.Key.Key_Down)  # another finding: a new overlay
        qtbot.wait(50)
        worked += time.perf_counter() - start
    heart.stop()
    assert win.session.image.path == SAMPLE
    heart.assert_responsive(worked)


def test_shortcuts_invert_fit_navigation_method_and_order(win, qtbot):
    _focus(win)
    win.open_paths([samples_dir()])  # scanned in the background
    qtbot.waitUntil(lambda: win.session.files.current is not None and not win.studies.scanning)
    wait_shown(qtbot, win, win.session.files.current)
    first = win.session.files.current
    inverted = win.session.view.inverted
    QTest.keyClick(win, Qt.Key.Key_I)
    assert win.session.view.inverted != inverted
    QTest.keyClick(win, Qt.Key.Key_Space)
    assert win.session.view.inverted == inverted
    QTest.keyClick(win, Qt.Key.Key_Plus)
    zoomed = win.image_area.view.zoom()
    QTest.keyClick(win, Qt.Key.Key_Equal)
    assert win.image_area.view.zoom() < zoomed
    QTest.keyClick(win, Qt.Key.Key_PageDown)
    wait_shown(qtbot, win, win.session.files.current)
    assert win.session.files.current != first and win.session.files.index == 1
    QTest.keyClick(win, Qt.Key.Key_PageUp)
    wait_shown(qtbot, win, first)
    QTest.keyClick(win, Qt.Key.Key_O)
    assert not win.session.overlay_on
    QTest.keyClick(win, Qt.Key.Key_O)
    assert win.session.overlay_on
    QTest.keyClick(win, Qt.Key.Key_M)  # next CAM method
    wait_shown(qtbot, win, first, "gradcam++")
    probs = win.session.result.probabilities
    order = win.findings.labels.order()
    assert order == sorted(order, key=lambda i: -probs[i])
    QTest.keyClick(win, Qt.Key.Key_L)  # model order
    assert win.findings.labels.order() == list(range(len(win.session.model.labels)))
    QTest.keyClick(win, Qt.Key.Key_L)
    assert win.findings.labels.order() == order


def test_grid_shows_every_finding_in_list_order_and_opens_one(win, qtbot):
    _focus(win)
    _open(qtbot, win, SAMPLE)
    QTest.keyClick(win, Qt.Key.Key_G)
    assert win.image_area.stack.currentWidget() is win.image_area.grid
    assert win.image_area.grid.shown_labels() == win.findings.labels.order()
    shown = [float(win.session.result.probabilities[i]) for i in win.image_area.grid.shown_labels()]
    assert shown == sorted(shown, reverse=True)  # the list's default: by probability
    texts = [win.image_area.grid.item(r).text() for r in range(win.image_area.grid.count())]
    for r, i in enumerate(win.image_area.grid.shown_labels()):
        assert win.session.model.labels[i] in texts[r]
        assert f"{win.session.result.probabilities[i]:.3f}" in texts[r]
    QTest.keyClick(win, Qt.Key.Key_L)  # the grid follows the list order
    assert win.image_area.grid.shown_labels() == list(range(len(win.session.model.labels)))
    pick = win.image_area.grid.item(3)
    rect = win.image_area.grid.visualItemRect(pick)
    QTest.mouseClick(win.image_area.grid.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, rect.center())
    assert win.image_area.stack.currentWidget() is win.image_area.view
    assert win.findings.labels.current_label() == 3


def test_right_drag_changes_window_level(win, qtbot):
    _open(qtbot, win, SAMPLE)
    before = win.session.view.window
    display_before = win.image_area.display.copy()
    vp = win.image_area.view.viewport()
    centre = vp.rect().center()
    QTest.mousePress(vp, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, centre)
    QTest.mouseMove(vp, centre + QPoint(-80, 30))
    QTest.mouseRelease(vp, Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier,
                       centre + QPoint(-80, 30))
    qtbot.waitUntil(win.drawn)
    assert win.session.view.window.width < before.width and win.session.view.window.center > before.center
    assert not np.array_equal(win.image_area.display, display_before)
    assert f"W {win.session.view.window.width:.0f}" in win.status.wl.text()


def test_metadata_hides_identifying_fields(win, qtbot):
    _open(qtbot, win, SAMPLE)
    shown = " ".join(win.tabs.metadata.shown_values())
    assert "DX" in shown and "PHANTOM^DEMO" not in shown
    win.tabs.metadata.show_identifying.setChecked(True)
    assert "PHANTOM^DEMO" in " ".join(win.tabs.metadata.shown_values())


def test_exports(win, qtbot, tmp_path):
    from gradcam_viewer.ui import exporting

    _open(qtbot, win, SAMPLE)
    png = win.exports.view_png(tmp_path / "view.png")
    from PIL import Image

    with Image.open(png) as im:
        assert im.width == win.session.image.size[1] + exporting.PANEL
    assert b"PHANTOM" not in png.read_bytes()
    csv_path = win.exports.predictions(tmp_path / "p.csv", "csv")
    header, row = csv_path.read_text().splitlines()
    assert header.split(",")[5:-2] == win.session.model.labels and row.startswith(f"{SAMPLE.name},1,")
    assert header.endswith(",values,ood_flagged") and row.split(",")[-2] == "probabilities"
    assert row.split(",")[-1] == ("true" if win.session.result.ood["flagged"] else "false")
    js = win.exports.predictions(tmp_path / "p.json", "json")
    record = json.loads(js.read_text())
    assert set(record["probabilities"]) == set(win.session.model.labels)
    assert "PHANTOM" not in js.read_text()
    win.act["include_phi"].setChecked(True)
    js2 = win.exports.predictions(tmp_path / "p2.json", "json")
    assert "PHANTOM^DEMO" in js2.read_text()
    with pytest.raises(FileExistsError):
        win.exports.predictions(tmp_path / "p.json", "json")


def test_model_card_and_shortcut_list(win, qtbot):
    from PySide6.QtWidgets import QDialog, QTextBrowser

    win.act["card"].trigger()
    dialog = win.findChild(QDialog)
    html = dialog.findChild(QTextBrowser).toPlainText()
    assert "NOT FOR DIAGNOSTIC USE" in html and "Pointing game" in html
    assert "Opened with: Keras 3." in html and ".keras file" in html  # which loader was used
    dialog.close()
    qtbot.waitUntil(lambda: win.findChild(QDialog) is None, timeout=5000)  # deleted on close
    win.act["keys"].trigger()
    keys = win.findChild(QDialog).findChild(QTextBrowser).toPlainText()
    assert "Next CAM method" in keys and "M" in keys and "G" in keys and "L" in keys
    # every key of the list (and of README's table) is bound to an action; Ctrl+Q once was not
    # where Qt's StandardKey.Quit has no binding (Windows, offscreen)
    from PySide6.QtGui import QAction

    bound = {s.toString() for act in win.findChildren(QAction) for s in act.shortcuts()}
    assert {"Ctrl+O", "Ctrl+Shift+O", "PgDown", "PgUp", "=", "1", "+", "-", "Space", "I", "O",
            "C", "Up", "Down", "M", "L", "G", "Ctrl+E", "Ctrl+Q"} <= bound
    for dialog in win.findChildren(QDialog):
        dialog.close()
    qtbot.waitUntil(lambda: win.findChild(QDialog) is None, timeout=5000)
    win.act["about"].trigger()
    about = win.findChild(QDialog).findChild(QTextBrowser).toPlainText()
    # File > Send to PACS exists: "no network connections" alone would no longer be true
    assert "no network connections unless you send to a PACS node you configured" in about


def test_dialogs_and_message_boxes_do_not_pile_up(win, qtbot):
    from PySide6.QtWidgets import QDialog, QMessageBox

    def children():
        return len(win.findChildren(QDialog))  # QMessageBox is a QDialog too

    for i in range(5):
        win.act["about"].trigger()
        win.act["keys"].trigger()
        win.messages.error(f"error {i}")
    assert len(win.findChildren(QMessageBox)) == 5 and children() == 15
    for widget in win.findChildren(QDialog):
        widget.close()
    qtbot.waitUntil(lambda: children() == 0, timeout=5000)


def test_layout_remembered_and_maximised_on_first_run(qapp, qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from gradcam_viewer.ui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    first = MainWindow(settings)
    qtbot.addWidget(first)
    assert first.windowState() & Qt.WindowState.WindowMaximized
    first.setWindowState(Qt.WindowState.WindowNoState)
    first.show()
    first.resize(640, 480)
    first.tabs.splitter.setSizes([300, 120])
    qtbot.wait(20)
    sizes, size = first.tabs.splitter.sizes(), first.size().toTuple()
    first.close()
    second = MainWindow(settings)
    qtbot.addWidget(second)
    second.show()
    qtbot.wait(20)
    assert not second.windowState() & Qt.WindowState.WindowMaximized
    assert second.size().toTuple() == size
    assert second.tabs.splitter.sizes() == sizes
    second.close()


SPY = r'''
import sys, threading, time, importlib.abc
seen = []
class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "tensorflow" and not seen:
            seen.append(threading.current_thread().name)  # the window's import thread
        return None
sys.meta_path.insert(0, Spy())
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gradcam_viewer.ui.main_window import MainWindow
w = MainWindow()
w.show()
app.processEvents()
from gradcam_viewer.ui import preload
before = "finished" in preload.timings  # the window did not wait for the import
w.load_model("demo", "")
end = time.time() + 180
while w.session.model is None and time.time() < end:
    app.processEvents()
    time.sleep(0.01)
print(before, seen, w.session.model is not None)
w.shutdown()
'''


def test_tensorflow_is_imported_off_the_gui_thread_while_the_window_appears():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", SPY], capture_output=True, text=True,
                         timeout=300)
    # imported by the thread the window starts (ui/preload.py), not by the worker after it
    assert out.stdout.strip().splitlines()[-1] == "False ['gradcam-import'] True", \
        out.stderr[-2000:]


def test_model_failing_its_warm_up_is_not_installed_and_the_reason_is_kept(win, qtbot,
                                                                          monkeypatch):
    from gradcam_viewer.cam import CamError, Explainer

    _open(qtbot, win, SAMPLE)
    before = (win.worker.explainer, win.worker.bundle, win.worker.model_id, win.session.model)
    real = Explainer.explain

    def explain(self, x, *args, **kwargs):
        if not np.any(x):  # the warm-up input: all zeros
            raise CamError("the gradient of the target layer is None (injected)")
        return real(self, x, *args, **kwargs)

    monkeypatch.setattr(Explainer, "explain", explain)
    win.load_model("demo", "")
    qtbot.waitUntil(lambda: "injected" in win.messages.last_error, timeout=60_000)
    assert "the gradient of the target layer is None" in win.messages.last_error
    assert "still in use" in win.messages.last_error
    assert (win.worker.explainer, win.worker.bundle, win.worker.model_id, win.session.model) == before
    win.controls.method_box.setCurrentIndex(3)  # the old model still explains
    wait_shown(qtbot, win, SAMPLE, "layercam", 60)
    assert win.session.result.key[3] == before[2]
