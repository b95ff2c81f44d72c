"""Pixels to images off the GUI thread: the windowed radiograph and the coloured heatmap.

On a 14 MP radiograph windowing and building the QImage take well over 100 ms when the machine
is busy explaining; done here, the GUI thread only wraps the finished QImage in a pixmap. Every
job carries a token; a job superseded before it starts is skipped, so dragging the window/level
never queues up work.
"""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from gradcam_viewer.imaging.display import to_display
from gradcam_viewer.imaging.image import LoadedImage, Window
from gradcam_viewer.render.overlay import OverlayStyle, heat_rgba
from gradcam_viewer.ui.image_view import qimage_from_array


class Tokens:
    """Newest job token per kind ('base', 'overlay'); written by the GUI, read by the renderer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, int] = {}

    def next(self, kind: str) -> int:
        with self._lock:
            self._last[kind] = self._last.get(kind, 0) + 1
            return self._last[kind]

    def is_latest(self, kind: str, token: int) -> bool:
        with self._lock:
            return self._last.get(kind, 0) == token


class Renderer(QObject):
    base_ready = Signal(int, object, object)  # token, display pixels (uint8), QImage
    overlay_ready = Signal(int, object)  # token, QImage (RGBA)

    def __init__(self, tokens: Tokens) -> None:
        super().__init__()
        self.tokens = tokens

    @Slot(int, object, object, bool)
    def render_base(self, token: int, image: LoadedImage, window: Window | None,
                    invert: bool) -> None:
        if not self.tokens.is_latest("base", token):
            return
        display = to_display(image, window, invert)
        qimage = qimage_from_array(display)
        # the format a pixmap uses on screen: wrapping it on the GUI thread needs no conversion
        qimage = qimage.convertToFormat(QImage.Format.Format_RGB32)
        self.base_ready.emit(token, display, qimage)

    @Slot(int, object, object)
    def render_overlay(self, token: int, heat: np.ndarray, style: OverlayStyle) -> None:
        if not self.tokens.is_latest("overlay", token):
            return
        qimage = qimage_from_array(heat_rgba(heat, style))
        qimage = qimage.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
        self.overlay_ready.emit(token, qimage)
