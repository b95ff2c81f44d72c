"""The right-hand dock: the findings with their values and the colour bar, the Heatmap box
under them, and the DICOM metadata on a second tab.

The findings list keeps which finding is picked. A new image opens on its most probable
finding; another method or a re-explanation of the same image keeps the one picked.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gradcam_viewer.imaging.image import LoadedImage
from gradcam_viewer.models.operating_points import OperatingPoints
from gradcam_viewer.session.results import ExplainResult, ModelInfo
from gradcam_viewer.ui.heatmap_controls import HeatmapControls
from gradcam_viewer.ui.widgets import ColorBar, LabelList, MetadataPanel

Listed = tuple[str, int, int]  # (path, frame, model id) whose values fill the list


class FindingsPanel(QWidget):
    label_chosen = Signal(int)  # output index of the finding picked
    order_changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.labels = LabelList()
        # single-letter shortcuts (I, O, C) must reach the window, not the list's type-ahead
        self.labels.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.labels.label_chosen.connect(self.label_chosen)
        self.sort_box = QComboBox()
        self.sort_box.addItems(["Sort by probability", "Model order"])
        self.sort_box.currentIndexChanged.connect(self._order_changed)
        self.colorbar = ColorBar()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.sort_box)
        row = QHBoxLayout()
        row.addWidget(self.labels, 1)
        row.addWidget(self.colorbar)
        lay.addLayout(row, 1)
        self.mark_score = QLabel("")  # the picked finding against the user's marks
        self.mark_score.setWordWrap(True)
        self.mark_score.setVisible(False)
        lay.addWidget(self.mark_score)
        self.call = QLabel("")  # the picked finding at the model's operating point
        self.call.setWordWrap(True)
        self.call.setVisible(False)
        lay.addWidget(self.call)
        self.points: OperatingPoints | None = None
        self._values: np.ndarray | None = None
        self.labels.label_chosen.connect(lambda _k: self._show_call())
        self._listed: Listed | None = None

    def show_mark_scores(self, scores: dict[int, str], detail: str, tooltip: str,
                         read_only: set[int] | None = None, read_only_tip: str = "") -> None:
        """The live score (ui/marking.py): a short text per finding with marks (those against
        read-only marks apart), and the picked finding's numbers under the list."""
        self.labels.set_mark_scores(scores, tooltip, read_only or set(), read_only_tip)
        self.mark_score.setText(detail)
        self.mark_score.setToolTip(tooltip)
        self.mark_score.setVisible(bool(detail))

    def show_model(self, info: ModelInfo) -> None:
        if self.labels.labels() != info.labels:
            self.labels.set_labels(info.labels)
            self._listed = None
        self.labels.set_value_kind(info.identity.output_kind)
        self.points = info.identity.operating_points
        points = self.points
        self.labels.set_operating_points(
            {} if points is None else
            {k: (p.threshold, points.describe(label)) for k, label in enumerate(info.labels)
             if (p := points.point(label)) is not None})
        self._show_call()

    def show_result(self, result: ExplainResult) -> None:
        listed = (result.key[0], result.key[1], result.key[3])
        keep = (self.labels.current_label() if listed == self._listed
                else int(np.argmax(result.probabilities)))
        self._listed = listed
        self._values = np.asarray(result.probabilities, float)
        self.labels.set_probabilities(result.probabilities, ~result.has_evidence, keep=keep)
        self._show_call()

    def show_no_result(self, image: LoadedImage | None) -> None:
        """No explanation (yet): the values go once they belong to another image."""
        if self._listed is not None and (image is None or self._listed[:2] != (
                str(image.path), image.frame)):
            self.labels.set_probabilities(None, keep=self.labels.current_label())
            self._listed = None
            self._values = None
            self._show_call()

    def current_label(self) -> int | None:
        return self.labels.current_label()

    def _show_call(self) -> None:
        """'Effusion: positive at the operating point set on 212 local cases, ...'."""
        k, values, points = self.labels.current_label(), self._values, self.points
        labels = self.labels.labels()
        text = ""
        if points is not None and values is not None and k is not None and k < len(labels) \
                and points.point(labels[k]) is not None:
            text = f"{labels[k]}: {points.describe(labels[k], float(values[k]))}"
        self.call.setText(text)
        self.call.setVisible(bool(text))

    def order(self) -> list[int]:
        return self.labels.order()

    def toggle_order(self) -> None:
        self.sort_box.setCurrentIndex(1 - self.sort_box.currentIndex())

    def step(self, delta: int) -> None:
        """The previous (-1) or next (+1) finding in the order shown."""
        n = self.labels.topLevelItemCount()
        if not n:
            return
        item = self.labels.currentItem()
        row = self.labels.indexOfTopLevelItem(item) if item is not None else -1
        target = self.labels.topLevelItem(max(0, min(n - 1, row + delta)))
        if target is not None:
            self.labels.setCurrentItem(target)

    def _order_changed(self, index: int) -> None:
        self.labels.set_sort_by_probability(index == 0)
        self.order_changed.emit()


class ExplanationTabs(QTabWidget):
    """"Findings" (findings over the Heatmap box, in a splitter whose sizes are remembered)
    and "DICOM metadata"."""

    def __init__(self) -> None:
        super().__init__()
        self.findings = FindingsPanel()
        self.controls = HeatmapControls()
        self.metadata = MetadataPanel()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("side-splitter")
        self.splitter.addWidget(self.findings)
        self.splitter.addWidget(self.controls)
        self.splitter.setStretchFactor(0, 1)
        self.addTab(self.splitter, "Findings")
        self.addTab(self.metadata, "DICOM metadata")
        self.controls.style_changed.connect(lambda s: self.findings.colorbar.set_colormap(s.colormap))
