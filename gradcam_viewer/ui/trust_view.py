"""Can this output be trusted, in the window: the banner on an image unlike the calibration
images, and Help > Check this model. TensorFlow never runs on the GUI thread: the check runs
on a WorkerThread of its own."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QMessageBox, QStatusBar, QVBoxLayout, QWidget

from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.session.controller import SessionController
from gradcam_viewer.session.results import ExplainResult
from gradcam_viewer.trust.ood import banner_text
from gradcam_viewer.ui.image_view import qimage_from_array
from gradcam_viewer.ui.worker import Worker, WorkerThread

if TYPE_CHECKING:
    from PIL import Image

    from gradcam_viewer.models.bundle import ModelBundle
    from gradcam_viewer.trust.sanity import SanityResult

log = logging.getLogger(__name__)
FLAGGED_STYLE = "background:#f2c200;color:black;font-weight:bold;padding:4px;"
NOT_CALIBRATED_STYLE = "background:#333;color:#ccc;padding:2px;"
TITLE = "Check this model"


class OodBanner(QLabel):
    """Yellow when the image is unlike the calibration images, a grey line when the model has
    no calibration, hidden otherwise."""

    def __init__(self) -> None:
        super().__init__("")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setVisible(False)

    def show_result(self, result: ExplainResult | None) -> None:
        ood = result.ood if result is not None else None
        if ood is None:
            self.setVisible(False)
        elif not ood.get("calibrated"):
            self.setText("Out-of-distribution check: not calibrated for this model "
                         "(gradcam-viewer calibrate MODEL FOLDER...)")
            self.setStyleSheet(NOT_CALIBRATED_STYLE)
            self.setVisible(True)
        elif ood.get("flagged"):
            self.setText(banner_text(ood))
            self.setStyleSheet(FLAGGED_STYLE)
            self.setVisible(True)
        else:
            self.setVisible(False)


class SanityJob(QObject):
    """Cascading randomisation of the loaded model on the open image (or the bundled
    samples), on its own thread; the worker's model is only read (the check randomises a
    copy and verifies the weights' hash)."""

    done = Signal(object, object)  # SanityResult or None, PIL image or error message

    def __init__(self, bundle: ModelBundle, image: LoadedImage | None) -> None:
        super().__init__()
        self.bundle: ModelBundle | None = bundle
        self.image = image

    @Slot()
    def run(self) -> None:
        try:
            from gradcam_viewer.outputs.reports import figure_image, sanity_figure
            from gradcam_viewer.trust.sanity import cascading_randomisation

            bundle = self.bundle
            assert bundle is not None, "a job runs once"
            if self.image is not None:
                batch = bundle.prepare(self.image)
            else:
                from gradcam_viewer.imaging import load_image
                from gradcam_viewer.resources import samples_dir

                batch = np.concatenate([bundle.prepare(load_image(p))
                                        for p in sorted(samples_dir().glob("*.png"))])
            result = cascading_randomisation(bundle.model, batch, bundle.target_layer,
                                             max_steps=8, output=bundle.output)
            self.done.emit(result, figure_image(sanity_figure(
                result, f"{bundle.name}: {result.method} at {result.layer}")))
        except BaseException as exc:
            log.exception("sanity check failed")
            self.done.emit(None, f"The check failed ({type(exc).__name__}).")
        finally:  # the job outlives the check (the check keeps it): not so the model
            self.bundle = self.image = None


class ModelCheck(QObject):
    """Help > Check this model: one check at a time, its thread, and what it answered.

    A QObject of the GUI thread, so the job's `done` reaches `_answered` here (queued): a
    plain function would run in the check's own thread, build the dialog there and make
    that thread wait on itself."""

    def __init__(self, parent: QWidget, worker: Worker, session: SessionController,
                 status: QStatusBar) -> None:
        super().__init__(parent)
        self._parent, self._worker, self._session, self._status = parent, worker, session, status
        self.running: WorkerThread | None = None  # the check's thread, while it runs
        self.job: SanityJob | None = None
        self.result: SanityResult | None = None
        self.dialog: QDialog | None = None

    def start(self) -> None:
        """Runs the check off the GUI thread, then shows its table and plot."""
        bundle = self._worker.bundle
        if bundle is None or self.running is not None:
            QMessageBox.information(self._parent, TITLE, "No model is loaded yet, or a check "
                                                         "is already running.")
            return
        thread = WorkerThread(self._parent)
        thread.setStackSize(64 * 1024 * 1024)
        job = SanityJob(bundle, self._session.image)
        job.moveToThread(thread)
        thread.started.connect(job.run)
        job.done.connect(self._answered)
        self.running, self.job = thread, job
        self._status.showMessage("Checking the model (cascading randomisation)...")
        thread.start()

    def stop(self) -> None:
        """The window is closing: let a running check end (it cannot be interrupted) and its
        thread stop, else Qt aborts the process destroying a running QThread."""
        thread, self.running = self.running, None
        if thread is None:
            return
        if self.job is not None:
            self.job.done.disconnect()
        thread.quit()
        thread.wait()

    @Slot(object, object)
    def _answered(self, result: SanityResult | None, extra: Image.Image | str) -> None:
        thread, self.running = self.running, None
        if thread is not None:
            thread.quit()
            thread.wait()
        self._status.clearMessage()
        self.result = result
        if result is None or isinstance(extra, str):
            QMessageBox.warning(self._parent, TITLE, str(extra))
            return
        self.dialog = _check_dialog(self._parent, result, extra)
        self.dialog.show()


def _check_dialog(parent: QWidget, result: SanityResult, plot: Image.Image) -> QDialog:
    from gradcam_viewer.trust.sanity import table_rows

    text = "<table cellpadding=3>" + "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in table_rows(result)
    ) + "</table>"
    dialog = QDialog(parent)
    dialog.setWindowTitle("Check this model: do the heatmaps depend on what it learned?")
    lay = QVBoxLayout(dialog)
    verdict = QLabel(f"<b>{result.verdict()}</b>")
    verdict.setWordWrap(True)
    picture = QLabel()
    picture.setPixmap(QPixmap.fromImage(qimage_from_array(np.asarray(plot.convert("RGB")))))
    lay.addWidget(verdict)
    lay.addWidget(picture)
    lay.addWidget(QLabel(text))
    return dialog
