"""Exports from the window: the view as a PNG with label, probability, colour bar, model name
and notice burned in, and the predictions as CSV or JSON. Identifying fields only on request."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

from gradcam_viewer.outputs.export import write_csv, write_json
from gradcam_viewer.models.outputs import value_word
from gradcam_viewer.outputs.layout import common_root, relative_posix
from gradcam_viewer.outputs.records import csv_header, csv_row, prediction_record, source_id
from gradcam_viewer.render import colorbar
from gradcam_viewer.outputs.safe_write import write_atomic
from gradcam_viewer.trust.ood import banner_text
from gradcam_viewer.session.results import DEMO_BANNER
from gradcam_viewer.ui.image_view import qimage_from_array

if TYPE_CHECKING:
    from gradcam_viewer.ui.main_window import MainWindow

PANEL = 340


def export_view_png(win: MainWindow, path: Path, overwrite: bool = False) -> Path:
    canvas = compose_view(win)
    return write_atomic(path, lambda tmp: canvas.save(str(tmp), "PNG"), overwrite)


def compose_view(win: MainWindow) -> QImage:
    """Image + overlay at full resolution with an information panel on the right."""
    scene = win.view.render_scene()
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
    lines = _panel_lines(win)
    y = 28
    for text, bold in lines:
        font.setBold(bold)
        painter.setFont(font)
        rect = QRect(x0, y - 18, PANEL - 28, 200)
        used = painter.boundingRect(rect, int(Qt.TextFlag.TextWordWrap), text)
        painter.drawText(rect, int(Qt.TextFlag.TextWordWrap), text)
        y += used.height() + 8
    bar_h = min(240, height - y - 40)
    if win.result is not None and bar_h > 40:
        bar = colorbar(bar_h, 22, win.style.colormap)
        painter.drawImage(x0, y + 10, qimage_from_array(bar))
        painter.drawText(x0 + 30, y + 24, "1.0 (strongest evidence)")
        painter.drawText(x0 + 30, y + 10 + bar_h, "0.0")
    painter.end()
    return canvas


def _panel_lines(win: MainWindow) -> list[tuple[str, bool]]:
    lines: list[tuple[str, bool]] = []
    model = win.model
    if model is not None and model.is_demo:
        lines.append((DEMO_BANNER, True))
    elif model is not None:
        lines.append(("Research model - not for diagnostic use", True))
    label = win.labels.current_label()
    if win.result is not None and model is not None and label is not None:
        lines.append((f"{model.labels[label]}", True))
        word = value_word(model.identity.output_kind)
        lines.append((f"{word} {win.result.probabilities[label]:.3f}", False))
        lines.append((f"{win.result.method} at {win.result.layer}", False))
        if (win.result.ood or {}).get("flagged"):  # issue 13
            lines.append((banner_text(win.result.ood), True))
    if model is not None:
        lines.append((f"Model: {model.name}", False))
    lines.append((f"Image: {win.image.path.name}", False))
    if win.include_identifying():
        meta = win.image.visible_metadata(include_identifying=True)
        for key in ("PatientName", "PatientID", "PatientBirthDate"):
            if key in meta:
                lines.append((f"{key}: {meta[key]}", False))
    return lines


def export_predictions(win: MainWindow, path: Path, kind: str, overwrite: bool = False,
                       include_ids: bool = True) -> Path:
    """The record `gradcam-viewer explain` writes for the same image: its path is relative to
    the common folder of the files opened together, as the command's is to its inputs."""
    model, result, image = win.model, win.result, win.image
    opened = [Path(p) for p in win.files.paths]
    if Path(image.path) not in opened:
        opened = [Path(image.path)]
    source = source_id(image, relative_posix(image.path, common_root(opened)), include_ids)
    if kind == "csv":
        return write_csv(path, csv_header(model.labels, include_ids),
                         [csv_row(source, result.probabilities, include_ids,
                                  model.identity.output_kind, result.ood)], overwrite)
    record = prediction_record(source, image, model.identity, result,
                               include_identifying=win.include_identifying())
    return write_json(path, record, overwrite)
