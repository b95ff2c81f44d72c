"""The set-up dialog for a model without a manifest: labels, preprocessing, colour, size, output
meaning, target layer, name and intended use, with a live preview of the current image's
outputs. Saving writes `model.json` beside the model (validated, atomic, with its SHA-256) and
reopens the model, which then needs no set-up.

The suggestions come from the worker (it holds the Keras model); so do the previews: the dialog
sends a draft manifest to `Worker.preview` through a queued signal and shows the newest answer.
The GUI thread never runs TensorFlow.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gradcam_viewer.models.authoring import (
    SetupError,
    build_manifest,
    labels_from_file,
    manifest_path_beside,
    split_labels,
    write_beside,
)
from gradcam_viewer.models.manifest import Manifest
from gradcam_viewer.models.outputs import SCORES_TITLE
from gradcam_viewer.models.preprocessing import PRESET_TITLES
from gradcam_viewer.models.suggest import Suggestions
from gradcam_viewer.session.controller import SessionController
from gradcam_viewer.ui.worker import Worker

log = logging.getLogger(__name__)
PREVIEW_DELAY_MS = 200


class ModelSetup(QObject):
    """Opens the dialog for the model the worker just loaded (non-modal: the window keeps
    working, and the model is already usable with default labels until saved); `dialog` is
    the one open, if any. `saved` carries the model's path once its manifest is written: the
    window reopens it, and it needs no set-up from then on."""

    saved = Signal(str)

    def __init__(self, parent: QWidget, worker: Worker, session: SessionController) -> None:
        super().__init__(parent)
        self._parent, self._worker, self._session = parent, worker, session
        self.dialog: ModelSetupDialog | None = None

    def open(self, found: Suggestions) -> ModelSetupDialog:
        if self.dialog is not None:
            self.dialog.close()
        dialog = ModelSetupDialog(self._parent, found, self._worker, self._session)
        dialog.finished.connect(lambda _result: self._closed(dialog))
        dialog.saved.connect(self.saved)
        self.dialog = dialog
        dialog.show()
        return dialog

    def _closed(self, dialog: ModelSetupDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None


class ModelSetupDialog(QDialog):
    request_preview = Signal(int, str, object, object)  # id, model path, draft manifest, image
    saved = Signal(str)  # the model's path, once its manifest is written

    def __init__(self, parent: QWidget, found: Suggestions, worker: Worker,
                 session: SessionController) -> None:
        super().__init__(parent)
        self.found, self._worker, self._session = found, worker, session
        self.setWindowTitle(f"Set up {Path(found.path).name}")
        self.setModal(False)
        self.resize(640, 720)
        self.preview_id = 0
        self.preview_values: np.ndarray | None = None  # the newest preview's answer
        self.saved_path: Path | None = None
        self._build()
        self.request_preview.connect(worker.preview)
        worker.previewed.connect(self._previewed)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self._send_preview)
        self._changed()

    # ------------------------------------------------------------------ construction ----
    def _build(self) -> None:
        form = QFormLayout()
        form.addRow("Labels", self._labels_box())
        self._preprocessing_rows(form)
        self._colour_rows(form)
        form.addRow("Input size", self._size_row())
        self._output_rows(form)
        self._preview_area()
        outer = QVBoxLayout(self)
        outer.addWidget(self._intro())
        outer.addLayout(form)
        outer.addWidget(QLabel("<b>Preview</b> (the image on screen)"))
        outer.addWidget(self.preview_status)
        outer.addWidget(self.preview, 1)
        outer.addWidget(self.problem)
        outer.addWidget(self._buttons())
        for sig in (self.labels_edit.textChanged, self.preset.currentIndexChanged,
                    self.colour.currentIndexChanged, self.height_box.valueChanged,
                    self.width_box.valueChanged, self.output.currentIndexChanged,
                    self.layer.currentIndexChanged, self.mean.valueChanged,
                    self.std.valueChanged):
            sig.connect(self._changed)

    def _intro(self) -> QLabel:
        f = self.found
        intro = QLabel(f"<b>{Path(f.path).name}</b> has no manifest. It has {f.n_outputs} "
                       f"output(s); its last layer applies <i>{f.final_activation}</i>. Say what "
                       "it is once: the answers are saved beside the model. Until then it runs with "
                       "labels class 0, class 1, ..., input scaled to [0, 1], and (unless it "
                       "ends in a sigmoid/softmax) its outputs shown as scores, not "
                       "probabilities.")
        intro.setWordWrap(True)
        return intro

    def _labels_box(self) -> QWidget:
        self.labels_edit = QPlainTextEdit()
        self.labels_edit.setPlaceholderText("one label per line (or comma-separated), in the "
                                            "model's output order")
        self.labels_edit.setPlainText("\n".join(f"class {i}" for i in range(self.found.n_outputs)))
        self.labels_edit.setMaximumHeight(130)
        load = QPushButton("Load from file...")
        load.clicked.connect(self._load_labels)
        self.labels_count = QLabel()
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.labels_edit)
        row = QHBoxLayout()
        row.addWidget(self.labels_count, 1)
        row.addWidget(load)
        lay.addLayout(row)
        return box

    def _preprocessing_rows(self, form: QFormLayout) -> None:
        f = self.found
        self.preset = QComboBox()
        for key, title in PRESET_TITLES.items():
            self.preset.addItem(title, key)
        self.preset.setCurrentIndex(self.preset.findData(f.preset))
        form.addRow("Preprocessing", self.preset)
        why = QLabel(f"Suggested: {f.preset} ({f.preset_reason}).")
        why.setWordWrap(True)
        form.addRow("", why)
        self.mean, self.std = QDoubleSpinBox(), QDoubleSpinBox()
        for box, low, value in ((self.mean, -65535.0, 128.0), (self.std, 0.001, 64.0)):
            box.setDecimals(3)
            box.setRange(low, 65535.0)
            box.setValue(value)
        self.fixed_row = _row(QLabel("mean"), self.mean, QLabel("std"), self.std)
        form.addRow("", self.fixed_row)

    def _colour_rows(self, form: QFormLayout) -> None:
        self.colour = QComboBox()
        self.colour.addItem("grey (colour images are turned into grey first)", "grey")
        self.colour.addItem("RGB (colour images keep their channels)", "rgb")
        form.addRow("Colour", self.colour)
        form.addRow("", QLabel("Grey images are repeated into all three channels of an RGB model."
                               if self.found.channels == 3 else "The model takes one grey channel."))

    def _size_row(self) -> QWidget:
        f = self.found
        self.height_box, self.width_box = QSpinBox(), QSpinBox()
        for box, value in ((self.height_box, f.height), (self.width_box, f.width)):
            box.setRange(8, 4096)
            box.setValue(int(value or 224))
        variable = f.height is None or f.width is None
        self.height_box.setEnabled(variable)
        self.width_box.setEnabled(variable)
        note = QLabel("(the model accepts any size: give its training size)"
                      if variable else "(fixed by the model)")
        return _row(self.height_box, QLabel("\u00d7"), self.width_box, note, stretch_last=True)

    def _output_rows(self, form: QFormLayout) -> None:
        f = self.found
        self.output = QComboBox()
        if f.final_activation in ("sigmoid", "softmax"):
            self.output.addItem(f"probabilities (the model ends in a {f.final_activation})",
                                "probabilities")
        else:
            self.output.addItem("logits \u2192 sigmoid (multi-label)", "logits:sigmoid")
            self.output.addItem("logits \u2192 softmax (one of N)", "logits:softmax")
            self.output.addItem(f"unknown: show {SCORES_TITLE}", "scores")
            self.output.setCurrentIndex(self.output.findData(f"logits:{f.activation}"))
        form.addRow("Outputs", self.output)
        self.layer = QComboBox()
        for name in f.layers:
            self.layer.addItem(name + ("  (default)" if name == f.default_layer else ""), name)
        self.layer.setCurrentIndex(max(0, self.layer.findData(f.default_layer)))
        form.addRow("Target layer", self.layer)
        self.name = QLineEdit(f.name)
        form.addRow("Name", self.name)
        self.intended_use = QLineEdit()
        self.intended_use.setPlaceholderText("e.g. research on pneumonia detection; not for "
                                             "diagnosis")
        form.addRow("Intended use", self.intended_use)

    def _preview_area(self) -> None:
        self.preview = QTreeWidget()
        self.preview.setColumnCount(2)
        self.preview.setHeaderLabels(["Finding", "Value"])
        self.preview.setRootIsDecorated(False)
        self.preview_status = QLabel()
        self.preview_status.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b00")

    def _buttons(self) -> QDialogButtonBox:
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        return self.buttons

    # ------------------------------------------------------------------ state ----
    def labels(self) -> list[str]:
        text = self.labels_edit.toPlainText()
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        return split_labels(lines[0]) if len(lines) == 1 else lines

    def draft(self) -> Manifest:
        """The manifest these choices make; SetupError when they cannot work."""
        f = self.found
        out = self.output.currentData() or "scores"
        activation = out.split(":", 1)[1] if out.startswith("logits:") else None
        variable = f.height is None or f.width is None
        return build_manifest(
            model_path=Path(f.path), sha256=f.sha256, labels=self.labels(),
            preset=self.preset.currentData(), n_outputs=f.n_outputs,
            model_size=(f.height, f.width), channels=f.channels,
            final_activation=f.final_activation, activation=activation,
            size=(self.height_box.value(), self.width_box.value()) if variable else None,
            layer=self.layer.currentData() or "auto", name=self.name.text().strip() or None,
            colour=self.colour.currentData(), intended_use=self.intended_use.text().strip(),
            mean=self.mean.value(), std=self.std.value())

    def _changed(self, *_args: object) -> None:
        self.fixed_row.setVisible(self.preset.currentData() == "fixed")
        n = len(self.labels())
        self.labels_count.setText(f"{n} of {self.found.n_outputs} labels")
        try:
            self.draft()
        except SetupError as exc:
            self.problem.setText(str(exc))
            self.save_button.setEnabled(False)
            return
        self.problem.setText("")
        self.save_button.setEnabled(True)
        self._timer.start()

    def _load_labels(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Label names", str(Path(self.found.path).parent),
                                              "Text or CSV (*.txt *.csv *.tsv);;All files (*)")
        if name:
            self.load_labels_file(Path(name))

    def load_labels_file(self, path: Path) -> None:
        try:
            self.labels_edit.setPlainText("\n".join(labels_from_file(path)))
        except SetupError as exc:
            self.problem.setText(str(exc))

    # ------------------------------------------------------------------ preview ----
    def _send_preview(self) -> None:
        image = self._session.image
        if image is None:
            self.preview_status.setText("Open an image to see the model's outputs here.")
            return
        try:
            draft = self.draft()
        except SetupError:
            return
        self.preview_id += 1
        self.preview_status.setText(f"Computing for {Path(image.path).name}...")
        self.request_preview.emit(self.preview_id, self.found.path, draft, image)

    def _previewed(self, preview_id: int, answer: dict[str, Any]) -> None:
        if preview_id != self.preview_id:
            return  # an older draft's answer
        self.preview.clear()
        if "error" in answer:
            self.preview_values = None
            self.preview_status.setText(answer["error"])
            return
        self.preview_values = answer["values"]
        title = SCORES_TITLE if answer["kind"] == "scores" else "probability"
        self.preview.setHeaderLabels(["Finding", title])
        image = self._session.image
        self.preview_status.setText(
            f"{Path(image.path).name if image is not None else 'image'}: "
            f"{'raw scores' if answer['kind'] == 'scores' else 'probabilities'}")
        for label, value in sorted(zip(answer["labels"], answer["values"], strict=False),
                                   key=lambda lv: -float(lv[1])):
            item = QTreeWidgetItem([label, f"{float(value):.4f}"])
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight)
            self.preview.addTopLevelItem(item)

    # ------------------------------------------------------------------ saving ----
    def save(self) -> None:
        from gradcam_viewer.outputs.safe_write import OutputExistsError

        target = manifest_path_beside(Path(self.found.path))
        try:
            manifest = self.draft()
            self.saved_path = write_beside(Path(self.found.path), manifest)
        except SetupError as exc:
            self.problem.setText(str(exc))
            return
        except OutputExistsError:
            self.problem.setText(f"'{target.name}' already exists beside the model; it was "
                                 "not replaced.")
            return
        except OSError as exc:
            self.problem.setText(f"'{target.name}' cannot be written beside the model "
                                 f"({exc.strerror or type(exc).__name__}).")
            return
        log.info("manifest written beside %s", Path(self.found.path).name)
        self.accept()
        self.saved.emit(self.found.path)

    def done(self, result: int) -> None:
        """Closed, however: the worker's previews stop coming here."""
        try:
            self._worker.previewed.disconnect(self._previewed)
        except (RuntimeError, TypeError):
            pass
        super().done(result)


def _row(*widgets: QWidget, stretch_last: bool = False) -> QWidget:
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    for i, w in enumerate(widgets):
        lay.addWidget(w, 1 if stretch_last and i == len(widgets) - 1 else 0)
    return row
