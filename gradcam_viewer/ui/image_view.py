"""The image panel: a QGraphicsView with the radiograph and the heatmap as two pixmap items.

Opacity is the overlay item's own opacity, so moving the slider redraws nothing else, and at 0
the screen shows the image pixels exactly. Zoom is around the cursor, left-drag pans,
right-drag changes window (horizontal = width) and level (vertical = centre).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget


def qimage_from_array(arr: np.ndarray) -> QImage:
    """uint8 [H, W] grey, [H, W, 3] RGB or [H, W, 4] RGBA -> an owned QImage."""
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    if arr.ndim == 2:
        img = QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_Grayscale8)
    elif arr.shape[2] == 3:
        img = QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB888)
    else:
        img = QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGBA8888)
    return img.copy()  # detach from the numpy buffer


def array_from_qimage(img: QImage) -> np.ndarray:
    """QImage -> uint8 [H, W, 3] RGB."""
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    h, w = img.height(), img.width()
    buf = np.frombuffer(img.constBits(), np.uint8, count=img.sizeInBytes())
    return buf.reshape(h, img.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


class ImageView(QGraphicsView):
    window_dragged = Signal(float, float)  # d(width), d(level) in display units
    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.base = QGraphicsPixmapItem()
        self.base.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.overlay = QGraphicsPixmapItem()
        self.overlay.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.overlay.setZValue(1)
        self.scene().addItem(self.base)
        self.scene().addItem(self.overlay)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(Qt.GlobalColor.black)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._wl_origin: QPointF | None = None
        self._fit = True
        self._marks_hook: Callable[[QEvent], bool] | None = None

    def set_marks_hook(self, hook: Callable[[QEvent], bool]) -> None:
        """The marks layer (ui/marks_layer.py) sees left-button and key events first; `hook`
        returns True when it took the event."""
        self._marks_hook = hook

    def _hooked(self, event: QEvent) -> bool:
        if self._marks_hook is not None and self._marks_hook(event):
            event.accept()
            return True
        return False

    # --- content -------------------------------------------------------------------------
    def set_base(self, pixels: np.ndarray | QImage) -> None:
        image = pixels if isinstance(pixels, QImage) else qimage_from_array(pixels)
        first = self.base.pixmap().isNull() or self.base.pixmap().size() != image.size()
        self.base.setPixmap(QPixmap.fromImage(image))
        self.scene().setSceneRect(QRectF(0, 0, image.width(), image.height()))
        if first:
            self._fit = True
            self.fit()

    def set_overlay(self, rgba: np.ndarray | QImage | None, opacity: float,
                    size: tuple[int, int] | None = None) -> None:
        """The heatmap, at any resolution: it is scaled to cover `size` = (height, width) of
        the image (default: the scene)."""
        if rgba is None:
            self.overlay.setPixmap(QPixmap())
        else:
            image = rgba if isinstance(rgba, QImage) else qimage_from_array(rgba)
            self.overlay.setPixmap(QPixmap.fromImage(image))
            if size is None:
                rect = self.scene().sceneRect()
                size = (int(rect.height()), int(rect.width()))
            self.overlay.setTransform(QTransform.fromScale(size[1] / image.width(),
                                                           size[0] / image.height()))
        self.overlay.setOpacity(opacity)

    def set_overlay_opacity(self, opacity: float) -> None:
        self.overlay.setOpacity(opacity)

    def clear(self) -> None:
        """No image (the file asked for could not be opened)."""
        self.base.setPixmap(QPixmap())
        self.overlay.setPixmap(QPixmap())

    def render_scene(self) -> np.ndarray:
        """The scene at 1:1 as RGB, exactly what is drawn (for export and tests)."""
        rect = self.scene().sceneRect()
        img = QImage(int(rect.width()), int(rect.height()), QImage.Format.Format_RGB888)
        img.fill(Qt.GlobalColor.black)
        painter = QPainter(img)
        self.scene().render(painter, QRectF(img.rect()), rect)
        painter.end()
        return array_from_qimage(img)

    # --- zoom ----------------------------------------------------------------------------
    def fit(self) -> None:
        if not self.base.pixmap().isNull():
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
            self._fit = True
            self.zoom_changed.emit(self.zoom())

    def actual_size(self) -> None:
        self.resetTransform()
        self._fit = False
        self.zoom_changed.emit(1.0)

    def zoom_by(self, factor: float) -> None:
        z = self.zoom() * factor
        if 0.02 < z < 40:
            self.scale(factor, factor)
            self._fit = False
            self.zoom_changed.emit(self.zoom())

    def zoom(self) -> float:
        return float(self.transform().m11())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25 ** steps)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    # --- right-drag window/level --------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.RightButton:
            self._wl_origin = event.position()
            self.setCursor(Qt.CursorShape.SizeAllCursor)
            event.accept()
            return
        if self._hooked(event):
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._wl_origin is not None:
            delta = event.position() - self._wl_origin
            self._wl_origin = event.position()
            self.window_dragged.emit(float(delta.x()), float(delta.y()))
            event.accept()
            return
        if self._hooked(event):
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.RightButton and self._wl_origin is not None:
            self._wl_origin = None
            self.unsetCursor()
            event.accept()
            return
        if self._hooked(event):
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if not self._hooked(event):
            super().mouseDoubleClickEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if not self._hooked(event):
            super().keyPressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802 - right button is window/level
        event.accept()
