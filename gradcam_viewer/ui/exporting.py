"""Exports from the window: the view as a PNG with label, probability, colour bar, model name
and notice burned in, and the predictions as CSV or JSON. Identifying fields only on request.

The functions take a `Snapshot` of what is shown (and, for the PNG, the pixels the view
draws); `Exports` is the File menu's side: the file dialogs and the two export options.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QImageWriter, QPainter
from PySide6.QtWidgets import QFileDialog, QWidget

from gradcam_viewer.models.outputs import value_word
from gradcam_viewer.outputs.export import write_csv, write_json
from gradcam_viewer.outputs.layout import common_root, relative_posix
from gradcam_viewer.outputs.records import (
    calls_of,
    csv_header,
    csv_row,
    prediction_record,
    source_id,
)
from gradcam_viewer.outputs.safe_write import write_atomic
from gradcam_viewer.render import colorbar
from gradcam_viewer.session.results import DEMO_BANNER
from gradcam_viewer.session.snapshot import Snapshot
from gradcam_viewer.trust.ood import banner_text
from gradcam_viewer.ui.image_view import qimage_from_array
from gradcam_viewer.ui.status import Messages

PANEL = 340


def export_view_png(shown: Snapshot, scene: np.ndarray, path: Path, overwrite: bool = False,
                    include_identifying: bool = False) -> Path:
    """`scene`: the image with its overlay at 1:1, as the view draws it."""
    canvas = compose_view(shown, scene, include_identifying)

    def save(tmp: Path) -> None:
        writer = QImageWriter(str(tmp), b"PNG")
        if not writer.write(canvas):
            raise OSError(writer.errorString())

    return write_atomic(path, save, overwrite)


def compose_view(shown: Snapshot, scene: np.ndarray, include_identifying: bool = False) -> QImage:
    """Image + overlay at full resolution with an information panel on the right."""
    h, w = scene.shape[:2]
    height = max(h, 420)
    canvas = QImage(w + PANEL, height, QImage.Format.Format_RGB888)
    canvas.fill(QColor(20, 20, 20))
    painter = QPainter(canvas)
    painter.drawImage(0, 0, qimage_from_array(scene))
    x0 = w + 16
    painter.setPen(QColor(235, 235, 235))
    font = QFont()
    font.setPixelSize(16)
    painter.setFont(font)
    y = 28
    for text, bold in panel_lines(shown, include_identifying):
        font.setBold(bold)
        painter.setFont(font)
        rect = QRect(x0, y - 18, PANEL - 28, 200)
        used = painter.boundingRect(rect, int(Qt.TextFlag.TextWordWrap), text)
        painter.drawText(rect, int(Qt.TextFlag.TextWordWrap), text)
        y += used.height() + 8
    bar_h = min(240, height - y - 40)
    if shown.result is not None and bar_h > 40:
        bar = colorbar(bar_h, 22, shown.style.colormap)
        painter.drawImage(x0, y + 10, qimage_from_array(bar))
        painter.drawText(x0 + 30, y + 24, "1.0 (strongest evidence)")
        painter.drawText(x0 + 30, y + 10 + bar_h, "0.0")
    painter.end()
    return canvas


def panel_lines(shown: Snapshot, include_identifying: bool = False) -> list[tuple[str, bool]]:
    """The panel's lines, (text, bold), top to bottom."""
    lines: list[tuple[str, bool]] = []
    model, result, label, image = shown.model, shown.result, shown.label, shown.image
    if model is not None and model.is_demo:
        lines.append((DEMO_BANNER, True))
    elif model is not None:
        lines.append(("Research model - not for diagnostic use", True))
    if result is not None and model is not None and label is not None:
        lines.append((f"{model.labels[label]}", True))
        word = value_word(model.identity.output_kind)
        lines.append((f"{word} {result.probabilities[label]:.3f}", False))
        lines.append((f"{result.method} at {result.layer}", False))
        if result.ood is not None and result.ood.get("flagged"):
            lines.append((banner_text(result.ood), True))
    if model is not None:
        lines.append((f"Model: {model.name}", False))
    if image is not None:
        lines.append((f"Image: {image.path.name}", False))
        if include_identifying:
            meta = image.visible_metadata(include_identifying=True)
            for key in ("PatientName", "PatientID", "PatientBirthDate"):
                if key in meta:
                    lines.append((f"{key}: {meta[key]}", False))
    return lines


def export_predictions(shown: Snapshot, path: Path, kind: str, overwrite: bool = False,
                       include_ids: bool = True, include_identifying: bool = False) -> Path:
    """The record `gradcam-viewer explain` writes for the same image: its path is relative to
    the common folder of the files opened together, as the command's is to its inputs."""
    model, result, image = shown.model, shown.result, shown.image
    if model is None or result is None or image is None:
        raise ValueError("there are no predictions to export")
    opened = list(shown.files)
    if Path(image.path) not in opened:
        opened = [Path(image.path)]
    source = source_id(image, relative_posix(image.path, common_root(opened)), include_ids)
    if kind == "csv":
        identity = model.identity
        return write_csv(path, csv_header(model.labels, include_ids,
                                          calls=identity.operating_points is not None),
                         [csv_row(source, result.probabilities, include_ids,
                                  identity.output_kind, result.ood,
                                  calls_of(identity, result.probabilities))], overwrite)
    record = prediction_record(source, image, model.identity, result,
                               include_identifying=include_identifying)
    return write_json(path, record, overwrite)


class Exports:
    """File > Export view as PNG / predictions as CSV or JSON, and the two options under them
    (identifying fields in, DICOM UIDs out), which these exports follow."""

    def __init__(self, parent: QWidget, shown: Callable[[], Snapshot],
                 scene: Callable[[], np.ndarray], messages: Messages,
                 last_dir: Callable[[], str]) -> None:
        self._parent, self._shown, self._scene = parent, shown, scene
        self._messages, self._last_dir = messages, last_dir
        self.include_identifying = False
        self.leave_out_ids = False

    def set_include_identifying(self, on: bool) -> None:
        self.include_identifying = on

    def set_leave_out_ids(self, on: bool) -> None:
        self.leave_out_ids = on

    def view_png(self, path: Path, overwrite: bool = False) -> Path:
        return export_view_png(self._shown(), self._scene(), path, overwrite,
                               self.include_identifying)

    def predictions(self, path: Path, kind: str, overwrite: bool = False) -> Path:
        return export_predictions(self._shown(), path, kind, overwrite,
                                  include_ids=not self.leave_out_ids,
                                  include_identifying=self.include_identifying)

    def view_png_dialog(self) -> None:
        if self._shown().image is None:
            return
        name, _ = QFileDialog.getSaveFileName(self._parent, "Export view", self._suggest("png"),
                                              "PNG image (*.png)")
        if name:
            self._run(lambda: self.view_png(Path(name), overwrite=True))

    def predictions_dialog(self, kind: str) -> None:
        if self._shown().result is None:
            self._messages.error("There are no predictions to export yet.")
            return
        name, _ = QFileDialog.getSaveFileName(self._parent, "Export predictions",
                                              self._suggest(kind), f"{kind.upper()} (*.{kind})")
        if name:
            self._run(lambda: self.predictions(Path(name), kind, overwrite=True))

    def _run(self, job: Callable[[], Path]) -> None:
        try:
            path = job()
            self._messages.status(f"Exported {path.name}")
        except OSError as exc:
            self._messages.error(f"The export failed: {exc.strerror or exc}. Nothing was written.")

    def _suggest(self, ext: str) -> str:
        image = self._shown().image
        stem = image.path.stem if image is not None else "export"
        return str(Path(self._last_dir()) / f"{stem}_gradcam.{ext}")
