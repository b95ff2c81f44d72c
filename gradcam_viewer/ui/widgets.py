"""Small widgets: the label list with probability bars, the colour bar, the metadata table."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QHeaderView,
    QLabel,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gradcam_viewer.imaging.image import MetaField
from gradcam_viewer.render import colorbar
from gradcam_viewer.ui.image_view import qimage_from_array

PROB_ROLE = Qt.ItemDataRole.UserRole + 1
INDEX_ROLE = Qt.ItemDataRole.UserRole + 2
THRESHOLD_ROLE = Qt.ItemDataRole.UserRole + 3  # the label's operating point, if it has one


class ProbabilityDelegate(QStyledItemDelegate):
    """Draws the probability as a bar behind its number; red from the label's operating point
    on (a tick marks it), else from 0.5."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        value = index.data(PROB_ROLE)
        if value is None:
            return super().paint(painter, option, index)
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        threshold = index.data(THRESHOLD_ROLE)
        limit = 0.5 if threshold is None else float(threshold)
        if getattr(self.parent(), "values_are_probabilities", True):  # no bar for raw scores
            bar = QRect(option.rect.adjusted(2, 3, -2, -3))
            full = bar.width()
            bar.setWidth(int(full * max(0.0, min(1.0, float(value)))))
            painter.fillRect(bar, QColor(214, 96, 77) if value >= limit else QColor(90, 140, 190))
            if threshold is not None and 0.0 <= limit <= 1.0:
                x = bar.left() + int(full * limit)
                painter.fillRect(QRect(x, option.rect.top() + 1, 2, option.rect.height() - 2),
                                 QColor(30, 30, 30))
        painter.setPen(option.palette.text().color() if not option.state
                       & QStyle.StateFlag.State_Selected else option.palette.highlightedText().color())
        painter.drawText(option.rect.adjusted(6, 0, -4, 0),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                         f"{value:.3f}")
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem,  # noqa: N802 - Qt override
                 index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(120, 22)


class LabelList(QTreeWidget):
    """Every label with its probability; sorted by probability or in the model's order."""

    label_chosen = Signal(int)  # model index of the label

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(3)
        self.setHeaderLabels(["Finding", "Probability", "Marks"])
        self.setColumnHidden(2, True)  # shown while a finding has marks (`set_mark_scores`)
        self.setRootIsDecorated(False)
        self.setItemDelegateForColumn(1, ProbabilityDelegate(self))
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        self.header().resizeSection(1, 130)
        self.by_probability = True
        self.values_are_probabilities = True
        self.currentItemChanged.connect(self._changed)
        self._labels: list[str] = []
        self._probs: np.ndarray | None = None
        self._no_evidence: np.ndarray | None = None
        self._mark_scores: dict[int, str] = {}
        self._read_only_scores: set[int] = set()
        self._read_only_tip = ""
        self._points: dict[int, tuple[float, str]] = {}  # index -> threshold, its description

    def set_operating_points(self, points: dict[int, tuple[float, str]]) -> None:
        """The model's operating points (index -> threshold, and what the point is): a
        finding at or above its threshold is called positive (bold, red bar from the tick)."""
        self._points = dict(points)
        self._rebuild(self.current_label())

    def calls(self) -> dict[str, bool]:
        """The calls shown: finding -> positive, for findings with an operating point."""
        out = {}
        for item in self.items():
            value, threshold = item.data(1, PROB_ROLE), item.data(1, THRESHOLD_ROLE)
            if value is not None and threshold is not None:
                out[item.text(0)] = bool(value >= threshold)
        return out

    def set_mark_scores(self, scores: dict[int, str], tooltip: str = "",
                        read_only: set[int] | None = None, read_only_tip: str = "") -> None:
        """The live score of the findings that have marks (model index -> short text); those
        of `read_only` are against other readers' marks: in grey italics, as those marks are
        drawn grey, with `read_only_tip` (a word would not fit the column)."""
        self._mark_scores = dict(scores)
        self._read_only_scores = set(read_only or ())
        self._read_only_tip = read_only_tip
        self.setColumnHidden(2, not scores)
        self.headerItem().setToolTip(2, tooltip)
        for item in self.items():
            self._show_mark_score(item)

    def _show_mark_score(self, item: QTreeWidgetItem) -> None:
        index = int(item.data(0, INDEX_ROLE))
        theirs = index in self._read_only_scores
        item.setText(2, self._mark_scores.get(index, ""))
        font = item.font(2)
        font.setItalic(theirs)
        item.setFont(2, font)
        item.setForeground(2, self.palette().placeholderText() if theirs
                           else self.palette().text())
        item.setToolTip(2, self._read_only_tip if theirs else "")

    def read_only_scores(self) -> set[str]:
        """The findings whose Marks column is against other readers' marks."""
        return {item.text(0) for item in self.items()
                if item.text(2) and int(item.data(0, INDEX_ROLE)) in self._read_only_scores}

    def mark_score_texts(self) -> dict[str, str]:
        """The Marks column as shown: finding -> text (findings with marks only)."""
        return {item.text(0): item.text(2) for item in self.items() if item.text(2)}

    def set_labels(self, labels: list[str]) -> None:
        self._labels = list(labels)
        self._probs = None
        self._rebuild(keep=None)

    def set_probabilities(self, probs: np.ndarray | None, no_evidence: np.ndarray | None = None,
                          keep: int | None = None) -> None:
        self._probs = None if probs is None else np.asarray(probs, float)
        self._no_evidence = no_evidence
        self._rebuild(keep)

    def set_value_kind(self, output_kind: str) -> None:
        """The header says what the numbers are: probabilities, or scores (not probabilities)
        when the model ends in a linear layer and nothing says how to turn them into some."""
        from gradcam_viewer.models.outputs import SCORES_TITLE

        self.values_are_probabilities = output_kind != "scores"
        title = "Probability" if self.values_are_probabilities else SCORES_TITLE
        self.setHeaderLabels(["Finding", title, "Marks"])
        self.header().resizeSection(1, 130 if self.values_are_probabilities else 175)
        self.headerItem().setToolTip(1, {
            "logits": "The model's logits turned into probabilities by its output activation.",
            "scores": "The model's raw outputs: nothing says how to turn them into "
                      "probabilities (see File > Open model to set up its manifest).",
        }.get(output_kind, "The model's own output (it ends in a sigmoid or softmax)."))
        self.viewport().update()

    def header_title(self) -> str:
        return self.headerItem().text(1)

    def set_sort_by_probability(self, on: bool) -> None:
        self.by_probability = on
        self._rebuild(self.current_label())

    def current_label(self) -> int | None:
        item = self.currentItem()
        return None if item is None else int(item.data(0, INDEX_ROLE))

    def items(self) -> list[QTreeWidgetItem]:
        """The rows, top to bottom."""
        rows = (self.topLevelItem(r) for r in range(self.topLevelItemCount()))
        return [item for item in rows if item is not None]

    def select_label(self, index: int) -> None:
        for item in self.items():
            if int(item.data(0, INDEX_ROLE)) == index:
                self.setCurrentItem(item)
                return

    def labels(self) -> list[str]:
        return list(self._labels)

    def order(self) -> list[int]:
        """Model indices of the labels in the order shown."""
        return [int(item.data(0, INDEX_ROLE)) for item in self.items()]

    def shown_probabilities(self) -> dict[str, float]:
        out = {}
        for item in self.items():
            value = item.data(1, PROB_ROLE)
            if value is not None:
                out[item.text(0)] = float(value)
        return out

    def _rebuild(self, keep: int | None) -> None:
        self.blockSignals(True)
        self.clear()
        order = list(range(len(self._labels)))
        probs, note = self._probs, self._no_evidence
        if self.by_probability and probs is not None:
            order.sort(key=lambda i: -probs[i])
        for i in order:
            item = QTreeWidgetItem([self._labels[i], "", ""])
            item.setData(0, INDEX_ROLE, i)
            self._show_mark_score(item)
            if probs is not None:
                item.setData(1, PROB_ROLE, float(probs[i]))
                if note is not None and note[i]:
                    item.setToolTip(0, "No positive evidence at the target layer: no heatmap.")
            if i in self._points:
                threshold, where = self._points[i]
                item.setData(1, THRESHOLD_ROLE, threshold)
                positive = probs is not None and float(probs[i]) >= threshold
                verdict = "Positive at" if positive else "Below"
                item.setToolTip(1, f"{verdict} {where}")
                if positive:
                    font = item.font(0)
                    font.setBold(True)
                    item.setFont(0, font)
            self.addTopLevelItem(item)
        self.blockSignals(False)
        first = self.topLevelItem(0)
        if keep is not None:
            self.select_label(keep)
        elif first is not None:
            self.setCurrentItem(first)

    def _changed(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        if current is not None:
            self.label_chosen.emit(int(current.data(0, INDEX_ROLE)))


class ColorBar(QWidget):
    """Vertical colour bar with 0 and 1 ends."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._colormap = "inferno"
        self.setMinimumWidth(44)
        self.setMaximumWidth(60)

    def set_colormap(self, name: str) -> None:
        self._colormap = name
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        h = max(10, self.height() - 30)
        bar = QPixmap.fromImage(qimage_from_array(colorbar(h, 14, self._colormap)))
        painter.drawPixmap(6, 15, bar)
        painter.setPen(self.palette().text().color())
        painter.drawText(24, 22, "1")
        painter.drawText(24, 15 + h, "0")
        painter.end()


class MetadataPanel(QWidget):
    """DICOM header; identifying fields hidden until the box is ticked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.show_identifying = QCheckBox("Show patient-identifying fields")
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Attribute", "Value"])
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.empty = QLabel("No metadata (not a DICOM file).")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.show_identifying)
        layout.addWidget(self.table)
        layout.addWidget(self.empty)
        self._fields: dict[str, MetaField] = {}
        self.show_identifying.toggled.connect(lambda _on: self._fill())
        self._fill()

    def set_metadata(self, fields: dict[str, MetaField]) -> None:
        self._fields = fields
        self._fill()

    def shown_values(self) -> list[str]:
        cells = (self.table.item(r, 1) for r in range(self.table.rowCount()))
        return [cell.text() for cell in cells if cell is not None]

    def _fill(self) -> None:
        show_all = self.show_identifying.isChecked()
        rows = [f for f in self._fields.values() if show_all or not f.identifying]
        self.table.setRowCount(len(rows))
        for r, f in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(f.name or f.keyword))
            self.table.setItem(r, 1, QTableWidgetItem(f.value))
        self.empty.setVisible(not self._fields)
        self.table.setVisible(bool(self._fields))
