"""The window's side of the trust checks: the yellow banner on an image unlike the calibration images,
none on a bundled sample, and Help > Check this model off the GUI thread."""

from gradcam_viewer.resources import samples_dir
from gui_helpers import wait_result, wait_until

SAMPLE = samples_dir() / "phantom_03_nodule.png"


def test_banner_on_a_real_radiograph_not_on_a_phantom(win, shared_data):
    real = shared_data / "cxr-png" / "00013553_000.png"
    win.open_file(real)
    result = wait_result(win, real, 180)
    assert result.ood["flagged"] and win.image_area.ood_banner.isVisible()
    text = win.image_area.ood_banner.text()
    assert text.startswith("Unlike the images this model was checked on: its outputs may not "
                           "mean anything here (distance percentile ")
    assert f"{result.ood['percentile']:.1f})" in text
    from gradcam_viewer.ui import exporting

    assert any(line.startswith("Unlike the images") for line, _ in exporting.panel_lines(win.snapshot()))
    win.open_file(SAMPLE)
    result = wait_result(win, SAMPLE, 180)
    assert result.ood["flagged"] is False and not win.image_area.ood_banner.isVisible()


def test_check_this_model_runs_off_the_gui_thread(win):
    win.open_file(SAMPLE)
    wait_result(win, SAMPLE, 180)
    win.check.result = None
    win.act["check"].trigger()
    wait_until(lambda: win.check.dialog is not None
               and win.check.result is not None, 300)
    assert not win.check.result.flagged and win.check.result.weights_unchanged
    assert "passed" in win.check.result.verdict()
    # the dialog is built on the GUI thread, and the check's thread has ended (it once ran
    # the reply itself, built the dialog there and tried to wait on itself)
    from PySide6.QtWidgets import QApplication

    assert win.check.dialog.thread() is QApplication.instance().thread()
    assert win.check.job.thread() is not QApplication.instance().thread()
    wait_until(lambda: win.check.job.thread().isFinished(), 30)
    win.check.dialog.close()


def test_closing_the_window_during_the_check_waits_for_its_thread(win):
    """Closing while the check runs once aborted the process ('QThread: Destroyed while
    thread is still running')."""
    win.open_file(SAMPLE)
    wait_result(win, SAMPLE, 180)
    win.act["check"].trigger()
    thread = win.check.running
    assert thread is not None and thread.isRunning()
    win.shutdown()
    assert thread.isFinished() and win.check.running is None


def test_a_finished_check_does_not_keep_the_model_it_checked(win):
    """The check's job stays reachable from the window; once it has answered it must not
    keep the model alive after another one replaced it."""
    import gc
    import weakref

    win.open_file(SAMPLE)
    wait_result(win, SAMPLE, 180)
    checked = weakref.ref(win.worker.bundle)
    win.check.result = None
    win.act["check"].trigger()
    wait_until(lambda: win.check.result is not None and win.check.running is None, 300)
    model_id = win.session.model.model_id
    win.load_model("demo", "")
    wait_until(lambda: win.session.model.model_id > model_id and not win.session.busy, 180)
    win.check.dialog.close()
    gc.collect()
    assert checked() is None
