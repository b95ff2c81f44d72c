"""The window's side of issue 13 ("can this output be trusted?"), kept out of main_window.py so
that it stays a few hook lines there: the out-of-distribution banner and Help > Check this
model. TensorFlow never runs on the GUI thread: the check runs on a WorkerThread of its own."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QLabel, QMessageBox

from gradcam_viewer.trust.ood import banner_text

log = logging.getLogger(__name__)
FLAGGED_STYLE = "background:#f2c200;color:black;font-weight:bold;padding:4px;"
NOT_CALIBRATED_STYLE = "background:#333;color:#ccc;padding:2px;"


def ood_banner() -> QLabel:
    label = QLabel("")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setVisible(False)
    return label


def show_ood(banner: QLabel, result: Any) -> None:
    """Yellow when the image is unlike the calibration images, a grey line when the model
    has no calibration, hidden otherwise."""
    ood = getattr(result, "ood", None) if result is not None else None
    if ood is None:
        banner.setVisible(False)
    elif not ood.get("calibrated"):
        banner.setText("Out-of-distribution check: not calibrated for this model "
                       "(gradcam-viewer calibrate MODEL FOLDER...)")
        banner.setStyleSheet(NOT_CALIBRATED_STYLE)
        banner.setVisible(True)
    elif ood.get("flagged"):
        banner.setText(banner_text(ood))
        banner.setStyleSheet(FLAGGED_STYLE)
        banner.setVisible(True)
    else:
        banner.setVisible(False)


class SanityJob(QObject):
    """Cascading randomisation of the loaded model on the open image (or the bundled
    samples), on its own thread; the worker's model is only read (the check randomises a
    copy and verifies the weights' hash)."""

    done = Signal(object, object)  # SanityResult or None, PIL image or error message

    def __init__(self, bundle: Any, image: Any):
        super().__init__()
        self.bundle, self.image = bundle, image

    @Slot()
    def run(self) -> None:
        try:
            import numpy as np

            from gradcam_viewer.outputs.reports import figure_image, sanity_figure
            from gradcam_viewer.trust.sanity import cascading_randomisation

            if self.image is not None:
                batch = self.bundle.prepare(self.image)
            else:
                from gradcam_viewer.imaging import load_image
                from gradcam_viewer.resources import samples_dir

                batch = np.concatenate([self.bundle.prepare(load_image(p))
                                        for p in sorted(samples_dir().glob("*.png"))])
            result = cascading_randomisation(self.bundle.model, batch, self.bundle.target_layer,
                                             max_steps=8, output=self.bundle.output)
            self.done.emit(result, figure_image(sanity_figure(
                result, f"{self.bundle.name}: {result.method} at {result.layer}")))
        except BaseException as exc:
            log.exception("sanity check failed")
            self.done.emit(None, f"The check failed ({type(exc).__name__}).")
        finally:  # the job outlives the check (the window keeps it): not so the model
            self.bundle = self.image = None


class _Reply(QObject):
    """Lives on the GUI thread, so the job's `done` reaches `_show_check` there (queued): a
    plain lambda would run in the check's own thread, build the dialog there and make that
    thread wait on itself."""

    def __init__(self, win: Any):
        super().__init__(win)
        self.win = win

    @Slot(object, object)
    def show(self, result: Any, extra: Any) -> None:
        _show_check(self.win, result, extra)


def check_model(win: Any) -> None:
    """Help > Check this model: runs the check off the GUI thread, then shows table and plot."""
    from gradcam_viewer.ui.worker import WorkerThread

    bundle = getattr(win.worker, "bundle", None)
    if bundle is None or getattr(win, "_sanity_thread", None) is not None:
        QMessageBox.information(win, "Check this model", "No model is loaded yet, or a check "
                                                         "is already running.")
        return
    thread = WorkerThread(win)
    thread.setStackSize(64 * 1024 * 1024)
    job = SanityJob(bundle, win.image)
    job.moveToThread(thread)
    thread.started.connect(job.run)
    reply = _Reply(win)
    job.done.connect(reply.show)
    win._sanity_thread, win._sanity_job, win._sanity_reply = thread, job, reply
    win.statusBar().showMessage("Checking the model (cascading randomisation)...")
    thread.start()


def stop_check(win: Any) -> None:
    """The window is closing: let a running check end (it cannot be interrupted) and its
    thread stop, else Qt aborts the process destroying a running QThread."""
    thread = getattr(win, "_sanity_thread", None)
    if thread is None:
        return
    win._sanity_thread = None
    win._sanity_job.done.disconnect()
    thread.quit()
    thread.wait()


def _show_check(win: Any, result: Any, extra: Any) -> None:
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QDialog, QVBoxLayout

    from gradcam_viewer.trust.sanity import table_rows
    from gradcam_viewer.ui.image_view import qimage_from_array

    thread, win._sanity_thread = win._sanity_thread, None
    thread.quit()
    thread.wait()
    win.statusBar().clearMessage()
    win.sanity_result = result
    if result is None:
        QMessageBox.warning(win, "Check this model", str(extra))
        return
    import numpy as np

    rows = table_rows(result)
    text = "<table cellpadding=3>" + "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows) + "</table>"
    dialog = QDialog(win)
    dialog.setWindowTitle("Check this model: do the heatmaps depend on what it learned?")
    lay = QVBoxLayout(dialog)
    verdict = QLabel(f"<b>{result.verdict()}</b>")
    verdict.setWordWrap(True)
    plot = QLabel()
    plot.setPixmap(QPixmap.fromImage(qimage_from_array(np.asarray(extra.convert("RGB")))))
    lay.addWidget(verdict)
    lay.addWidget(plot)
    lay.addWidget(QLabel(text))
    win.sanity_dialog = dialog
    dialog.show()
