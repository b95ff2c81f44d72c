"""Reading in the real window (pytest-qt, the demo model): keys pressed while a folder is being
scanned are not lost, Page Down onto a file read ahead needs no request and shows image and
heatmap together, an image not read ahead shows before its heatmap."""

import shutil
import threading
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest

from gradcam_viewer.resources import samples_dir
from gui_helpers import shows, wait_shown

PNGS = sorted(samples_dir().glob("*.png"))
DICOMS = sorted(samples_dir().glob("*.dcm"))


def _page_down(win):
    win.activateWindow()
    win.image_area.view.setFocus()
    QTest.keyClick(win, Qt.Key.Key_PageDown)


def _folder(tmp_path, files, name="three"):
    folder = tmp_path / name
    folder.mkdir()
    for path in files:
        shutil.copy(path, folder / path.name)
    return folder


def test_page_down_twice_before_the_folder_is_listed_ends_on_the_third_file(win, qtbot,
                                                                            tmp_path):
    """The reported case: a folder of three PNGs, Page Down twice at once (the scan has not
    listed the folder yet: its reply cannot arrive before these keys are handled)."""
    folder = _folder(tmp_path, PNGS[:3])
    win.open_paths([folder])
    _page_down(win)
    _page_down(win)
    third = folder / PNGS[2].name
    wait_shown(qtbot, win, third)
    assert win.session.files.current == third and win.session.files.index == 2


def test_keys_during_a_long_scan_move_within_what_is_listed(win, qtbot, tmp_path, monkeypatch):
    """A slow scan lists the files found so far: the first opens before the scan ends, Page
    Down moves within what is known, a key past the last one known is taken when more come,
    and the file shown keeps its place when the scan ends."""
    import gradcam_viewer.imaging.scanner as scanner

    folder = _folder(tmp_path, PNGS, "five")
    real_sniff = scanner.sniff
    gate, sniffed = threading.Event(), []

    def slow_sniff(head):  # a slow medium: the third file is read once the test says so
        sniffed.append(head)
        if len(sniffed) > 2:
            gate.wait(60)
        return real_sniff(head)

    monkeypatch.setattr(scanner, "sniff", slow_sniff)
    monkeypatch.setattr(scanner, "PROGRESS_S", 0.0)
    try:
        win.open_paths([folder])
        first = folder / PNGS[0].name
        qtbot.waitUntil(lambda: shows(win, first), timeout=60_000)
        assert not win.session.files.complete  # shown from a partial list
        known = len(win.session.files.paths)
        for _ in range(known + 1):  # one past the last file known
            _page_down(win)
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not win.studies.scanning and win.session.files.complete,
                    timeout=60_000)
    wanted = folder / PNGS[known + 1].name
    wait_shown(qtbot, win, wanted)
    assert win.session.files.paths == [folder / p.name for p in PNGS]


def _sent_opens(win):
    sent = []
    win.link.request_open.connect(lambda *args: sent.append(args))
    win.link.request_explain.connect(lambda *args: sent.append(args))
    return sent


def test_page_down_onto_a_file_read_ahead_shows_image_and_heatmap_at_once(win, qtbot,
                                                                          reference):
    _, run = reference
    win.open_paths(DICOMS[:3])
    qtbot.waitUntil(lambda: len(win.session.files.paths) == 3)
    first, second = win.session.files.paths[:2]
    wait_shown(qtbot, win, first)
    qtbot.waitUntil(lambda: win.session.cache.get((str(second), 0, "gradcam",
                                                   win.session.model.model_id)) is not None
                    and win.session.cache.image(second) is not None, timeout=60_000)
    sent = _sent_opens(win)
    overlay_before = win.image_area.view.overlay.pixmap().cacheKey()
    together = []

    def on_base(_image):  # after the slot that puts the base on screen: the heatmap is new too
        QTimer.singleShot(0, lambda: together.append(
            win.image_area.view.overlay.pixmap().cacheKey() != overlay_before))

    win.image_area.view.set_base = _wrapped(win.image_area.view.set_base, on_base)
    _page_down(win)
    assert shows(win, second)  # at once, in the key's own event
    wait_shown(qtbot, win, second)
    assert sent == []  # nothing asked of the worker for it
    qtbot.waitUntil(lambda: bool(together))
    assert together == [True]
    np.testing.assert_allclose(win.session.result.probabilities,
                               run(second).probabilities[0], atol=1e-5)


def _wrapped(method, before):
    def call(*args, **kwargs):
        before(*args)
        return method(*args, **kwargs)

    return call


def test_an_image_not_read_ahead_shows_before_its_heatmap(win, qtbot, monkeypatch):
    from gradcam_viewer.cam import Explainer

    real = Explainer.explain

    def slow(self, *args, **kwargs):
        time.sleep(0.8)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Explainer, "explain", slow)
    seen = []

    def on_base(_image):
        seen.append((win.session.image.path, win.session.result is None))

    win.image_area.view.set_base = _wrapped(win.image_area.view.set_base, on_base)
    win.open_file(DICOMS[0])
    qtbot.waitUntil(lambda: bool(seen), timeout=60_000)
    assert seen[0] == (DICOMS[0], True)  # on screen while its explanation is being computed
    wait_shown(qtbot, win, DICOMS[0])


def test_reading_ahead_off_asks_for_every_file(win, qtbot):
    win.session.ahead.on = False
    win.open_paths(DICOMS[:2])
    qtbot.waitUntil(lambda: len(win.session.files.paths) == 2)
    first, second = win.session.files.paths
    wait_shown(qtbot, win, first)
    assert win.session.cache.image(second) is None
    sent = _sent_opens(win)
    _page_down(win)
    wait_shown(qtbot, win, second)
    assert len(sent) == 1 and Path(sent[0][1]) == second


def test_reads_ahead_start_only_after_the_new_image_is_on_screen(win, qtbot):
    """Effects that change the image and ask for a read ahead (as Page Down onto a file read
    ahead does): the read ahead goes to the worker only once the screen has drawn the new
    image (it was sent before the redraw, while the old image counted as drawn)."""
    from gradcam_viewer.session.controller import Effects, Redraw
    from gradcam_viewer.session.read_ahead import PrefetchRequest

    win.open_paths([PNGS[0]])
    wait_shown(qtbot, win, PNGS[0])
    qtbot.waitUntil(win.drawn, timeout=60_000)
    events = []
    win.link.request_prefetch.connect(lambda request: events.append("ahead"))
    win.image_area.view.set_base = _wrapped(win.image_area.view.set_base,
                                            lambda _image: events.append("base"))
    ahead = PrefetchRequest(win.session.tracker.new_prefetch(), PNGS[1], 0, "gradcam")
    win._apply(Effects([ahead], Redraw.IMAGE))
    qtbot.waitUntil(lambda: "ahead" in events, timeout=60_000)
    assert events[0] == "base", events


def test_the_worker_reads_ahead_within_the_window_s_cache_budget(win):
    """The agenda decides what fits beside the image on screen by the session cache's budget
    (memory/cache_mb): the window hands it over (no budget: reads ahead of any size)."""
    assert win.worker.agenda.budget == win.session.cache.budget > 0
