"""Message boxes and text dialogs that never block the event loop (tests and the worker keep
running while one is open). Each is deleted when closed, so none piles up under the window."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QMessageBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from gradcam_viewer.session.results import ModelInfo

if TYPE_CHECKING:
    from gradcam_viewer.models.manifest import Manifest

ABOUT = ("<p>Offline viewer for chest radiographs with Grad-CAM heatmaps. Makes no network "
         "connections unless you send to a PACS node you configured. Not a medical device.</p>")


def message(parent: QWidget, title: str, text: str, icon: QMessageBox.Icon) -> QMessageBox:
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setModal(False)
    box.show()
    return box


def text_dialog(parent: QWidget, title: str, html_text: str) -> QDialog:
    dialog = QDialog(parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.setWindowTitle(title)
    dialog.resize(620, 560)
    browser = QTextBrowser(dialog)
    browser.setHtml(html_text)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=dialog)
    buttons.rejected.connect(dialog.close)
    lay = QVBoxLayout(dialog)
    lay.addWidget(browser)
    lay.addWidget(buttons)
    dialog.setModal(False)
    dialog.show()
    return dialog


def about(parent: QWidget) -> QDialog:
    from gradcam_viewer import __version__

    return text_dialog(parent, "About", f"<h3>Grad-CAM Viewer {__version__}</h3>{ABOUT}")


def model_card(parent: QWidget, model: ModelInfo | None) -> QDialog:
    text = model_card_html(model.manifest if model is not None else None,
                           model.loader if model is not None else None)
    return text_dialog(parent, "Model card", text)


def model_card_html(manifest: dict[str, Any] | None, loader: str | None = None) -> str:
    """`loader`: how the model file was opened (ModelBundle.loader)."""
    if not manifest:
        return "<p>No model is loaded.</p>"
    e = lambda v: html.escape(str(v))  # noqa: E731
    parts = [f"<h2>{e(manifest.get('name'))}</h2>",
             f"<p><b>Version:</b> {e(manifest.get('version'))}</p>"]
    disclaimer = manifest.get("disclaimer")
    if disclaimer:
        parts.append(f"<p style='color:#b00;font-weight:bold'>{e(disclaimer)}</p>")
    for key, title in (("intended_use", "Intended use"), ("trained_on", "Training data")):
        parts.append(f"<p><b>{title}:</b> {e(manifest.get(key, 'unknown'))}</p>")
    from gradcam_viewer.models.outputs import describe_output
    from gradcam_viewer.models.preprocessing import describe

    spec = manifest.get("input", {})
    parts.append(f"<p><b>Input:</b> {e(spec.get('height'))}\u00d7{e(spec.get('width'))}\u00d7"
                 f"{e(spec.get('channels'))} ({e(spec.get('colour', 'rgb'))}); target layer "
                 f"{e(manifest.get('target_layer'))}</p>")
    parts.append(f"<p><b>Preprocessing:</b> {e(describe(manifest.get('preprocessing', {})))}</p>")
    parts.append(f"<p><b>Outputs:</b> {e(describe_output(cast('Manifest', manifest)))}</p>")
    if manifest.get("output"):
        parts.append(f"<p><b>Scores from output:</b> {e(manifest['output'])}</p>")
    if loader:
        parts.append(f"<p><b>Opened with:</b> {e(loader)}</p>")
    per_label = (manifest.get("metrics") or {}).get("per_label")
    if per_label:
        n = manifest["metrics"].get("held_out_images", "?")
        rows = "".join(
            f"<tr><td>{e(name)}</td><td>{m.get('auroc', float('nan')):.3f}</td>"
            f"<td>{m.get('pointing_game', float('nan')):.3f}</td>"
            f"<td>{m.get('mean_iou', float('nan')):.3f}</td><td>{e(m.get('positives'))}</td></tr>"
            for name, m in per_label.items())
        parts.append(f"<h3>Measured on {e(n)} held-out images</h3><table border=1 cellpadding=4>"
                     "<tr><th>Finding</th><th>AUROC</th><th>Pointing game</th><th>Mean IoU</th>"
                     f"<th>Positives</th></tr>{rows}</table>")
    elif manifest.get("metrics") == {}:
        parts.append("<p>No measured metrics.</p>")
    parts.append(f"<h3>Labels</h3><p>{e(', '.join(manifest.get('labels', [])))}</p>")
    parts.append("<h3>Manifest</h3><pre>" + e(json.dumps(
        {k: v for k, v in manifest.items() if k != "metrics"}, indent=2)) + "</pre>")
    return "".join(parts)
