"""Races between the user and the worker, on a window of its own per test (pytest-qt)."""

from pathlib import Path

import pytest

from gradcam_viewer.resources import samples_dir

SAMPLES = sorted(samples_dir().glob("*.dcm"))


def _shows(win, path, method):
    r = win.result
    return (win.image is not None and Path(win.image.path) == Path(path) and r is not None
            and r.key[0] == str(path) and r.method == method
            and r.key[3] == win.model.model_id)


def test_page_down_then_method_change_shows_the_next_file(win, qtbot):
    win.files.set(SAMPLES, 0)
    win.open_file(SAMPLES[0])
    qtbot.waitUntil(lambda: _shows(win, SAMPLES[0], "gradcam"), timeout=120_000)
    win.step_file(1)  # Page Down ...
    win.method_box.setCurrentIndex(1)  # ... and another method before the next file is in
    qtbot.waitUntil(lambda: _shows(win, SAMPLES[1], "gradcam++"), timeout=30_000)
    assert win.files.current == SAMPLES[1]


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
    old = win.model.model_id
    win.load_model("demo", "")
    win.open_file(SAMPLES[1])
    qtbot.waitUntil(lambda: win.model.model_id > old and _shows(win, SAMPLES[1], "gradcam"),
                    timeout=30_000)
