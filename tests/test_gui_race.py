"""Races between the user and the worker, on a window of its own per test (pytest-qt)."""

from pathlib import Path

import pytest

from gradcam_viewer.resources import samples_dir

SAMPLES = sorted(samples_dir().glob("*.dcm"))


def _shows(win, path, method):
    r = win.session.result
    return (win.session.image is not None and Path(win.session.image.path) == Path(path) and r is not None
            and r.key[0] == str(path) and r.method == method
            and r.key[3] == win.session.model.model_id)


def _page_down_then_method_change(win, qtbot, timeout_ms):
    win.session.ahead.on = False  # the next file must be opening (not read ahead already)
    win.open_paths(SAMPLES)  # scanned in the background, listed in study order
    qtbot.waitUntil(lambda: len(win.session.files.paths) == len(SAMPLES))
    first, second = win.session.files.paths[:2]
    qtbot.waitUntil(lambda: _shows(win, first, "gradcam"), timeout=120_000)
    # the background trace over: it would change who gets the GIL between the two
    qtbot.waitUntil(lambda: win.worker.explainer.is_traced("gradcam"), timeout=120_000)
    win.step_file(1)  # Page Down ...
    win.controls.method_box.setCurrentIndex(1)  # ... and another method before the next file is in
    qtbot.waitUntil(lambda: _shows(win, second, "gradcam++"), timeout=timeout_ms)
    assert win.session.files.current == second


def test_page_down_then_method_change_shows_the_next_file(win, qtbot):
    _page_down_then_method_change(win, qtbot, 30_000)


def test_race_test_fails_without_the_protection(win, qtbot, monkeypatch):
    """With the old behaviour put back (one staleness for opens and explanations, and the
    image on screen explained again while the next one is loading) the file is lost."""
    from pytestqt.exceptions import TimeoutError as QtTimeout

    from gradcam_viewer.session.controller import RequestTracker, SessionController

    monkeypatch.setattr(RequestTracker, "open_is_stale", RequestTracker.explain_is_stale)
    settle = SessionController._settle

    def eager(self):
        opening, self.opening = self.opening, None
        try:
            return settle(self)
        finally:
            self.opening = opening

    monkeypatch.setattr(SessionController, "_settle", eager)
    with pytest.raises(QtTimeout):
        _page_down_then_method_change(win, qtbot, 5_000)
    assert win.session.image.path == win.session.files.paths[0]  # the previous image, as the issue reported


def test_model_loaded_while_a_file_opens_shows_the_file(win, qtbot, monkeypatch):
    import gradcam_viewer.imaging as imaging

    win.open_file(SAMPLES[0])
    qtbot.waitUntil(lambda: _shows(win, SAMPLES[0], "gradcam"), timeout=120_000)
    real = imaging.load_image

    def slow_load(*args, **kwargs):  # the model's reply reaches the window during the load
        import time

        time.sleep(1.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(imaging, "load_image", slow_load)
    old = win.session.model.model_id
    win.load_model("demo", "")
    win.open_file(SAMPLES[1])
    qtbot.waitUntil(lambda: win.session.model.model_id > old and _shows(win, SAMPLES[1], "gradcam"),
                    timeout=30_000)
