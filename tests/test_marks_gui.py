"""Marking in the viewer (pytest-qt, offscreen): shapes drawn with the mouse land at the image
coordinates aimed at, at any zoom; undo/redo; a killed viewer loses no mark; the live score is
what `gradcam-viewer evaluate` computes from the exported marks, and what a reference computes
from the map and the mask."""

import csv
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from gradcam_viewer.marks import Kind, Mark
from gradcam_viewer.marks.store import MarkStore, image_key
from gradcam_viewer.resources import samples_dir
from gui_helpers import wait_shown

PNG = samples_dir() / "phantom_03_nodule.png"  # 768 x 768
ROOT = Path(__file__).resolve().parents[1]
LEFT = Qt.MouseButton.LeftButton
NONE = Qt.KeyboardModifier.NoModifier


def _open(qtbot, win, path):
    win.open_file(Path(path))
    result = wait_shown(qtbot, win, path)
    qtbot.waitUntil(win.drawn)
    return result


def _at(view, x, y) -> QPoint:
    """The viewport pixel showing image point (x, y)."""
    return view.mapFromScene(QPointF(x, y))


def _drag(view, a, b):
    port = view.viewport()
    QTest.mousePress(port, LEFT, NONE, _at(view, *a))
    QTest.mouseMove(port, _at(view, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2))
    QTest.mouseMove(port, _at(view, *b))
    QTest.mouseRelease(port, LEFT, NONE, _at(view, *b))


def _zoom(view, zoom, centre):
    view.actual_size()
    if zoom != 1:
        view.zoom_by(zoom)
    view.centerOn(QPointF(*centre))
    QTest.qWait(1)


def _marks(win):
    return win.marking.editor.marks.marks


@pytest.mark.parametrize("zoom", [1.0, 2.6])
def test_shapes_drawn_with_the_mouse_are_stored_where_they_were_aimed(win, qtbot, zoom,
                                                                      marks_folder):
    view = win.image_area.view
    _open(qtbot, win, PNG)
    win.marking.finding_box.setEditText("Nodule")
    _zoom(view, zoom, (300, 300))
    tol = 1.0 / zoom  # a viewport pixel in image pixels (to 1 px asked)
    QTest.keyClick(win, Qt.Key.Key_B)
    _drag(view, (250.3, 240.7), (330.2, 300.9))
    QTest.keyClick(win, Qt.Key.Key_E)
    _drag(view, (350.5, 320.25), (270.75, 380.5))  # dragged up-left
    QTest.keyClick(win, Qt.Key.Key_P)
    port = view.viewport()
    corners = [(260.4, 260.2), (340.6, 270.1), (310.3, 350.8), (255.9, 330.3)]
    for c in corners[:-1]:
        QTest.mouseClick(port, LEFT, NONE, _at(view, *c))
    QTest.mouseDClick(port, LEFT, NONE, _at(view, *corners[-1]))
    rect, ellipse, polygon = _marks(win)
    assert rect.kind is Kind.RECTANGLE and rect.finding == "Nodule"
    assert np.allclose(rect.points, [(250.3, 240.7), (330.2, 300.9)], atol=tol)
    assert ellipse.kind is Kind.ELLIPSE
    assert np.allclose(ellipse.bounds(), (270.75, 320.25, 350.5, 380.5), atol=tol)
    assert polygon.kind is Kind.POLYGON
    assert np.allclose(polygon.points, corners, atol=tol)
    # stored at once, under the file's SHA-256, with the same coordinates
    stored = MarkStore(marks_folder).load(image_key(PNG))
    assert stored.marks == _marks(win) and stored.size == (768, 768)
    # Enter closes a polygon too; Esc drops one half drawn
    for c in corners[:3]:
        QTest.mouseClick(port, LEFT, NONE, _at(view, c[0] + 100, c[1]))
    QTest.keyClick(view, Qt.Key.Key_Return)
    assert len(_marks(win)) == 4
    QTest.mouseClick(port, LEFT, NONE, _at(view, 100, 100))
    QTest.mouseClick(port, LEFT, NONE, _at(view, 150, 100))
    QTest.keyClick(view, Qt.Key.Key_Escape)
    QTest.mouseClick(port, LEFT, NONE, _at(view, 120, 160))
    QTest.keyClick(view, Qt.Key.Key_Escape)
    assert len(_marks(win)) == 4


def test_select_move_resize_delete_undo_redo_and_hide(win, qtbot):
    view = win.image_area.view
    _open(qtbot, win, PNG)
    _zoom(view, 1.5, (300, 300))
    win.marking.finding_box.setEditText("Mass")
    QTest.keyClick(win, Qt.Key.Key_B)
    _drag(view, (200, 200), (300, 260))
    QTest.keyClick(win, Qt.Key.Key_B)  # B again: back to select / pan
    assert win.marking.layer.tool == "select"
    first = _marks(win)[0]
    _drag(view, (250, 230), (270, 250))  # inside the rectangle: moves it
    moved = _marks(win)[0]
    assert moved.id == first.id
    assert np.allclose(moved.points, [(220, 220), (320, 280)], atol=1)
    _drag(view, (320, 280), (340, 330))  # the bottom-right handle: resizes it
    assert np.allclose(_marks(win)[0].points, [(220, 220), (340, 330)], atol=1)
    center = view.viewportTransform().map(QPointF(300, 300))
    _drag(view, (100, 500), (150, 550))  # outside any mark: pans, changes nothing
    assert len(_marks(win)) == 1
    assert view.viewportTransform().map(QPointF(300, 300)) != center
    resized = _marks(win)[0]
    win.marking.editor.selected = resized.id
    QTest.keyClick(win, Qt.Key.Key_Delete)
    assert _marks(win) == ()
    QTest.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _marks(win)[0].points == resized.points
    QTest.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _marks(win)[0].points == moved.points  # before the resize
    QTest.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier |
                   Qt.KeyboardModifier.ShiftModifier)
    assert _marks(win)[0].points == resized.points
    drawn = [i for i in view.scene().items() if i.zValue() >= 5]
    assert drawn
    QTest.keyClick(win, Qt.Key.Key_A)
    assert not [i for i in view.scene().items() if i.zValue() >= 5]
    QTest.keyClick(win, Qt.Key.Key_A)
    assert [i for i in view.scene().items() if i.zValue() >= 5]
    # the finding of the selected mark is changed in the box
    win.marking.editor.selected = _marks(win)[0].id
    win.marking.finding_box.setEditText("Atelectasis")
    win.marking._finding_typed()
    assert _marks(win)[0].finding == "Atelectasis"
    # "no finding" is refused while shapes are there, kept when they are gone
    win.act["mark_none"].trigger()
    assert [m.kind for m in _marks(win)] == [Kind.RECTANGLE]
    win.marking.editor.selected = _marks(win)[0].id
    QTest.keyClick(win, Qt.Key.Key_Delete)
    win.act["mark_none"].trigger()
    assert [m.kind for m in _marks(win)] == [Kind.NO_FINDING]


def test_read_only_marks_are_drawn_apart_and_edited_as_a_copy(win, qtbot, marks_folder):
    store = MarkStore(marks_folder)
    theirs = Mark(Kind.ELLIPSE, ((300, 300), (400, 400), (360, 340), (340, 360)), "Nodule",
                  source="SR by another tool")
    store.save(store.load(image_key(PNG), PNG.name, (768, 768)).with_mark(theirs))
    view = win.image_area.view
    _open(qtbot, win, PNG)
    _zoom(view, 1.0, (350, 350))
    paths = [i for i in view.scene().items() if i.zValue() == 5]
    assert len(paths) == 1 and paths[0].pen().style() == Qt.PenStyle.DashLine
    _drag(view, (350, 350), (380, 380))  # selects it, does not move it
    assert _marks(win) == (theirs,) and win.marking.editor.selected == theirs.id
    QTest.keyClick(win, Qt.Key.Key_Delete)
    assert _marks(win) == (theirs,)
    win.act["mark_copy"].trigger()
    copy = _marks(win)[1]
    assert not copy.read_only and copy.points == theirs.points and copy.id != theirs.id
    _drag(view, (350, 350), (380, 380))  # the copy is on top and moves
    assert _marks(win)[1].points[0] == pytest.approx((330, 330), abs=1)
    assert _marks(win)[0] == theirs


def test_live_score_equals_evaluate_and_a_reference(win, qtbot, tmp_path):
    from gradcam_viewer.cli import main
    from test_marks import _reference

    view = win.image_area.view
    result = _open(qtbot, win, PNG)
    labels = win.session.model.labels
    k = labels.index("Nodule")
    win.findings.labels.select_label(k)
    win.controls.threshold.setValue(50)  # evaluate's threshold
    heat = result.display_heatmap(k, (768, 768))
    py, px = np.unravel_index(np.argmax(heat), heat.shape)
    _zoom(view, 1.0, (px, py))
    win.marking.finding_box.setEditText("Nodule")
    QTest.keyClick(win, Qt.Key.Key_B)
    _drag(view, (px - 60.4, py - 40.6), (px + 30.2, py + 50.3))  # the peak, off-centre
    qtbot.waitUntil(lambda: not win.marking.scoring)  # computed off the GUI thread
    live = win.marking.scores[k]
    mark = _marks(win)[0]
    assert live.hit == 1 and 0.05 < live.energy < 0.95 and 0.05 < live.iou < 0.95  # telling
    assert live.iobb > 0
    # shown beside the probability and under the list, and on the grid's tile
    shown = win.findings.labels.mark_score_texts()
    assert list(shown) == ["Nodule"] and f"E {live.energy:.2f}" in shown["Nodule"]
    assert f"IoU {live.iou:.2f}" in win.findings.mark_score.text()
    QTest.keyClick(win, Qt.Key.Key_G)
    tiles = [win.image_area.grid.item(r).text() for r in range(win.image_area.grid.count())]
    assert sum(f"E {live.energy:.2f}" in t for t in tiles) == 1
    QTest.keyClick(win, Qt.Key.Key_G)
    # a reference from the map and the mask, computed in the test
    mask = mark.mask((768, 768))
    want = _reference(result.normalized[k], mask, 0.5)
    assert (live.hit, live.energy, live.iou, live.iobb) == pytest.approx(want, abs=2e-5)
    # evaluate on the exported CSV: the same figures
    csv_path, json_path = win.marking.export(tmp_path / "marks.csv")
    rows = list(csv.reader(csv_path.open()))
    assert rows[1][:2] == [PNG.name, "Nodule"] and json_path.exists()
    (tmp_path / "labels.csv").write_text(f"Image,Nodule\n{PNG.name},1\n")
    assert main(["evaluate", "--labels", str(tmp_path / "labels.csv"), "--boxes", str(csv_path),
                 str(PNG), "--out", str(tmp_path / "ev"), "--bootstrap", "20"]) == 0
    row = next(r for r in csv.DictReader((tmp_path / "ev" / "evaluation.csv").open())
               if r["label"] == "Nodule")
    assert int(row["boxes"]) == 1
    assert float(row["pointing_game"]) == live.hit
    assert float(row["energy_pointing_game"]) == pytest.approx(live.energy, abs=6e-5)
    assert float(row["mean_iou"]) == pytest.approx(live.iou, abs=6e-5)
    for t in (0.1, 0.25, 0.5, 0.75, 0.9):
        assert float(row[f"iobb_acc_{t:g}"]) == float(live.iobb >= t)
    # another threshold: the live IoU follows the Heatmap box
    win.controls.threshold.setValue(20)
    qtbot.waitUntil(lambda: not win.marking.scoring)
    assert win.marking.scores[k].threshold == pytest.approx(0.2)
    assert win.marking.scores[k].iou == pytest.approx(_reference(result.normalized[k], mask,
                                                                 0.2)[2], abs=2e-5)


def test_read_only_marks_are_scored_apart_and_said_so_off_the_gui_thread(win, qtbot,
                                                                          marks_folder,
                                                                          monkeypatch):
    """A colleague's marks count in the live score, as theirs: their own numbers, labelled
    read-only with their source; yours beside them. Computed on another thread than the GUI's."""
    import threading

    from gradcam_viewer.marks.live import LiveScorer
    from gradcam_viewer.ui.marking import short_score
    from test_marks import _reference

    threads = []
    score = LiveScorer.score
    monkeypatch.setattr(LiveScorer, "score", lambda self, given: (
        threads.append(threading.current_thread()), score(self, given))[1])
    store = MarkStore(marks_folder)
    theirs = Mark(Kind.ELLIPSE, ((300, 300), (420, 300), (360, 260), (360, 340)), "Nodule",
                  source="SR by another tool")
    store.save(store.load(image_key(PNG), PNG.name, (768, 768)).with_mark(theirs))
    result = _open(qtbot, win, PNG)
    k = win.session.model.labels.index("Nodule")
    win.findings.labels.select_label(k)
    qtbot.waitUntil(lambda: not win.marking.scoring)
    assert threads and threading.main_thread() not in threads
    assert k not in win.marking.scores and k in win.marking.score.theirs
    threshold = win.marking.score.theirs[k].threshold
    assert win.findings.labels.mark_score_texts()["Nodule"] == short_score(
        win.marking.score.theirs[k])
    assert win.findings.labels.read_only_scores() == {"Nodule"}  # grey italics, a tip
    win.act["grid"].trigger()
    grid = win.image_area.grid
    tiles = [grid.item(r) for r in range(grid.count())]
    assert [t.toolTip().endswith("against read-only marks (grey)") for t in tiles] == [
        t.text().startswith("Nodule") for t in tiles]
    win.act["grid"].trigger()
    detail = win.findings.mark_score.text()
    assert detail.startswith("Nodule vs read-only marks (SR by another tool): ")
    got = win.marking.score.theirs[k]
    assert (got.hit, got.energy, got.iou, got.iobb) == pytest.approx(
        _reference(result.normalized[k], theirs.mask((768, 768)), threshold), abs=2e-5)
    mine = Mark.rectangle(100, 500, 260, 700, "Nodule")
    win.marking._edit(lambda: win.marking.editor.put(mine))
    qtbot.waitUntil(lambda: not win.marking.scoring)
    assert win.findings.labels.read_only_scores() == set()
    lines = win.findings.mark_score.text().split("\n")
    assert [line.split(":")[0] for line in lines] == [
        "Nodule vs your marks", "Nodule vs read-only marks (SR by another tool)"]
    got = win.marking.scores[k]
    assert (got.hit, got.energy, got.iou, got.iobb) == pytest.approx(
        _reference(result.normalized[k], mine.mask((768, 768)), threshold), abs=2e-5)
    assert win.marking.score.theirs[k] == LiveScorer().score(win.marking._request).theirs[k]


EVENTS = st.lists(st.one_of(st.tuples(st.just("threshold"), st.integers(5, 95)),
                            st.tuples(st.just("pick"), st.integers(0, 5)),
                            st.tuples(st.just("edit"), st.integers(-20, 20)),
                            st.tuples(st.just("wait"), st.integers(0, 40))),
                  min_size=1, max_size=12)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=EVENTS)
def test_the_score_shown_is_the_one_of_what_is_on_screen_in_any_order(win, qtbot, events):
    """Random orders of threshold moves, findings picked, marks moved and pauses, the answers
    of the score thread arriving whenever they do: once it is quiet, the score shown is the
    one computed afresh for the image, marks and threshold on screen."""
    from gradcam_viewer.marks.live import LiveScorer, ScoreInput
    from gradcam_viewer.ui.marking import short_scores

    if win.session.image is None:
        _open(qtbot, win, PNG)
    editor = win.marking.editor
    if not editor.marks.regions():
        for mark in (Mark.rectangle(300, 300, 420, 400, "Nodule"),
                     Mark.ellipse_in(100, 100, 300, 260, "Mass")):
            win.marking._edit(lambda m=mark: editor.put(m))
    for kind, value in events:
        if kind == "threshold":
            win.controls.threshold.setValue(value)
        elif kind == "pick":
            win.findings.labels.select_label(value)
        elif kind == "edit":
            first = editor.marks.regions()[0]
            win.marking._edit(lambda m=first, d=value: editor.put(m.moved(d, 0)))
        else:
            QTest.qWait(value)
    qtbot.waitUntil(lambda: not win.marking.scoring)
    shown = win.snapshot()
    want = LiveScorer().score(ScoreInput(shown.result.key, shown.result.normalized,
                                         tuple(shown.names), editor.marks, shown.image.size,
                                         shown.style.threshold))
    assert win.marking.score == want
    names = shown.names
    texts, theirs = short_scores(want)
    assert win.findings.labels.mark_score_texts() == {names[k]: t for k, t in texts.items()}
    assert win.findings.labels.read_only_scores() == {names[k] for k in theirs}


KILLED_VIEWER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from PySide6.QtCore import QPointF, QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication
    from gradcam_viewer.ui.main_window import MainWindow

    app = QApplication([])
    win = MainWindow(QSettings(sys.argv[2], QSettings.Format.IniFormat))
    win.show()
    win.open_file(Path(sys.argv[1]))
    while win.session.image is None or not win.drawn():
        app.processEvents()
    view = win.image_area.view
    view.actual_size()
    view.centerOn(QPointF(300, 300))
    win.marking.finding_box.setEditText("Effusion")
    QTest.keyClick(win, Qt.Key.Key_P)
    for x, y in ((250, 250), (350, 260), (300, 340)):
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier, view.mapFromScene(QPointF(x, y)))
    QTest.keyClick(view, Qt.Key.Key_Return)
    print("MARKED", [m.points for m in win.marking.editor.marks.marks], flush=True)
    app.exec()  # until killed
""")


def test_a_killed_viewer_loses_no_mark(win, qtbot, tmp_path):
    png = tmp_path / "first.png"
    shutil.copyfile(PNG, png)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", KILLED_VIEWER, str(png),
                              str(tmp_path / "child.ini")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 180
        line = ""
        while "MARKED" not in line and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line and child.poll() is not None:
                break
        assert "MARKED" in line, child.stderr.read() if child.poll() is not None else line
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    renamed = tmp_path / "moved" / "renamed.png"  # a copy under another name: same bytes
    renamed.parent.mkdir()
    shutil.copyfile(png, renamed)
    _open(qtbot, win, renamed)
    (polygon,) = _marks(win)
    assert polygon.kind is Kind.POLYGON and polygon.finding == "Effusion"
    assert np.allclose(polygon.points, [(250, 250), (350, 260), (300, 340)], atol=1)
    assert [i for i in win.image_area.view.scene().items() if i.zValue() == 5]


def test_export_writes_only_your_marks_and_closing_stops_the_score_thread(win, qtbot,
                                                                          marks_folder,
                                                                          tmp_path):
    """File > Export marks as CSV and JSON leaves other readers' read-only marks out (an image
    with only theirs is not in the files); closing the window ends the live score's thread."""
    import json
    import threading

    store = MarkStore(marks_folder)
    theirs = Mark(Kind.RECTANGLE, ((10, 10), (60, 60)), "Mass", "sr-1", source="Doe, SR1")
    other_png = tmp_path / "other.png"
    shutil.copy(samples_dir() / "phantom_05_pneumothorax.png", other_png)
    store.save(store.load(image_key(other_png), other_png.name, (768, 768)).with_mark(theirs))
    _open(qtbot, win, PNG)
    win.marking.add_read_only([theirs])
    win.marking.finding_box.setEditText("Nodule")
    mine = Mark.ellipse_in(300, 300, 420, 380, "Nodule")
    win.marking.editor.put(mine)
    win.marking.refresh_scores()
    qtbot.waitUntil(lambda: not win.marking.scoring)
    csv_path, json_path = win.marking.export(tmp_path / "marks.csv")
    rows = list(csv.reader(csv_path.open()))[1:]
    x0, y0, x1, y1 = mine.bounds()
    assert rows == [[PNG.name, "Nodule", *(f"{v:.10g}" for v in (x0, y0, x1 - x0, y1 - y0))]]
    images = json.loads(json_path.read_text())["images"]
    assert [[m["id"] for m in i["marks"]] for i in images] == [[mine.id]]
    assert [m.id for m in _marks(win)] == [theirs.id, mine.id]  # theirs still shown

    def scoring_threads():
        return [t for t in threading.enumerate() if t.name == "gradcam-live-score"]

    assert scoring_threads()  # the score above ran on it
    win.close()
    assert scoring_threads() == []
