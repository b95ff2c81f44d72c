"""All findings at a glance: one small image per label with its heatmap and probability, in the
order of the findings list. Every map comes from the one explanation already made, so the grid
costs no model work; clicking a tile opens that finding in the single view."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPainter, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

from gradcam_viewer.cam.heatmap import upsample_heatmap
from gradcam_viewer.marks.shapes import ImageMarks
from gradcam_viewer.render.overlay import OverlayStyle, composite
from gradcam_viewer.session.results import ExplainResult
from gradcam_viewer.ui.image_view import qimage_from_array
from gradcam_viewer.ui.marks_layer import READ_ONLY, colour_of, mark_path

TILE = 180
INDEX_ROLE = Qt.ItemDataRole.UserRole + 1


def thumbnail(display: np.ndarray, side: int = TILE) -> np.ndarray:
    """The display pixels shrunk to `side` on the long side (striding first: cheap on 14 MP)."""
    h, w = display.shape[:2]
    step = max(1, max(h, w) // (side * 2))
    small = np.ascontiguousarray(display[::step, ::step])
    scale = side / max(small.shape[:2])
    size = (max(1, round(small.shape[1] * scale)), max(1, round(small.shape[0] * scale)))
    return np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BILINEAR))


class GridView(QListWidget):
    label_chosen = Signal(int)  # model index of the label

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(TILE, TILE))
        self.setGridSize(QSize(TILE + 24, TILE + 52))
        self.setSpacing(6)
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setStyleSheet("QListWidget{background:#111;color:#eee;}")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # letter shortcuts stay with the window
        self.itemClicked.connect(lambda item: self.label_chosen.emit(int(item.data(INDEX_ROLE))))
        self._marks: ImageMarks | None = None  # drawn on every tile (None: hidden)
        self._scores: dict[int, str] = {}  # a finding's live score against them
        self._read_only: set[int] = set()  # ... against other readers' marks (grey)

    def set_marks(self, marks: ImageMarks | None, scores: dict[int, str],
                  read_only: set[int] | None = None) -> None:
        """The marks and their live scores (ui/marking.py), used by `set_content`; the scores
        of `read_only` are against other readers' marks (said in the tile's tooltip)."""
        self._marks, self._scores = marks, dict(scores)
        self._read_only = set(read_only or ())

    def _with_marks(self, pixels: np.ndarray, size: tuple[int, int]) -> QImage:
        """A tile with the marks' outlines, scaled from the image's `size` = (height, width)."""
        image = qimage_from_array(pixels)
        if self._marks is None or not self._marks.marks:
            return image
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setTransform(QTransform.fromScale(image.width() / size[1],
                                                  image.height() / size[0]))
        for mark in self._marks.marks:
            pen = QPen(READ_ONLY if mark.read_only else colour_of(mark.finding), 1.5)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawPath(mark_path(mark, size))
        painter.end()
        return image

    def set_content(self, display: np.ndarray | None, result: ExplainResult | None,
                    names: list[str], style: OverlayStyle, order: list[int]) -> None:
        """`order`: model indices as the findings list shows them (`LabelList.order()`)."""
        self.clear()
        if display is None or result is None or not names:
            return
        base = thumbnail(display)
        filled = OverlayStyle(max(style.opacity, 0.35), style.colormap, style.threshold,
                              style.contours)
        for i in order:
            heat = upsample_heatmap(result.normalized[i], base.shape[:2])
            pixels = composite(base, heat, filled) if result.has_evidence[i] else base
            text = f"{names[i]}\np = {result.probabilities[i]:.3f}"
            if i in self._scores:
                text += f"  [{self._scores[i]}]"
            tile = self._with_marks(pixels, display.shape[:2])
            item = QListWidgetItem(QIcon(QPixmap.fromImage(tile)), text)
            item.setData(INDEX_ROLE, i)
            item.setToolTip(f"{names[i]}: p = {result.probabilities[i]:.3f}"
                            + ("" if result.has_evidence[i] else " (no positive evidence)")
                            + ("; the score is against read-only marks (grey)"
                               if i in self._read_only and i in self._scores else ""))
            self.addItem(item)

    def shown_labels(self) -> list[int]:
        return [int(self.item(r).data(INDEX_ROLE)) for r in range(self.count())]
