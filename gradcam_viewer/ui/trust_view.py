"""The window's side of issue 13 ("can this output be trusted?"), kept out of main_window.py so
that it stays a few hook lines there: the out-of-distribution banner and Help > Check this
model. TensorFlow never runs on the GUI thread: the check runs on a WorkerThread of its own."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

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
