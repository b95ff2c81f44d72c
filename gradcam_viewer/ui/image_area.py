"""The centre of the window: the demo and out-of-distribution banners, the image view or the
grid of all findings, and the information line under them.

It draws what a `Snapshot` says is shown. Windowing the image and colouring the heatmap run in
a render thread (`ui/renderer.py`): the GUI thread only puts finished QImages on screen. Each
job has a token; only the newest job of each kind is drawn, and `drawn()` says whether the
screen has caught up. A new image whose heatmap is being coloured too (one read ahead, or from
the cache) waits for it: both go on screen in one go, never the old heatmap over the new image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget

from gradcam_viewer.render.overlay import effective_opacity
from gradcam_viewer.session.results import DEMO_BANNER, ResultCache, overlay_size
from gradcam_viewer.session.snapshot import Snapshot
from gradcam_viewer.ui.grid_view import GridView
from gradcam_viewer.ui.image_view import ImageView
from gradcam_viewer.ui.renderer import Renderer, Tokens
from gradcam_viewer.ui.trust_view import OodBanner

DEMO_STYLE = "background:#8b1a1a;color:white;font-weight:bold;padding:4px;"
INFO_STYLE = "color:#ddd;background:#222;padding:3px;"


class ImageArea(QWidget):
    render_base = Signal(int, object, object, bool)  # token, image, window, inverted
    render_overlay = Signal(int, object, object)  # token, heatmap at overlay size, style
    caught_up = Signal()  # the screen shows everything asked for (no render job pending)

    def __init__(self, shown: Callable[[], Snapshot], cache: ResultCache) -> None:
        super().__init__()
        self._shown, self._cache = shown, cache
        self.view = ImageView(self)
        self.grid = GridView()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.grid)
        self.banner = QLabel(DEMO_BANNER)
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.setStyleSheet(DEMO_STYLE)
        self.banner.setVisible(False)
        self.ood_banner = OodBanner()
        self.info = QLabel("")
        self.info.setStyleSheet(INFO_STYLE)
        # a long line of file information must not widen the centre and squeeze the panels
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        for widget, stretch in ((self.banner, 0), (self.ood_banner, 0), (self.stack, 1),
                                (self.info, 0)):
            lay.addWidget(widget, stretch)
        self.display: np.ndarray | None = None  # the windowed pixels on screen
        self._held: QImage | None = None  # a new base waiting for the heatmap being coloured
        self.tokens = Tokens()
        self._rendering: set[str] = set()  # 'base' / 'overlay' jobs the screen still waits for
        self._start_renderer()

    def _start_renderer(self) -> None:
        self.render_thread = QThread(self)
        self.render_thread.setObjectName("gradcam-render")
        self.renderer = Renderer(self.tokens)
        self.renderer.moveToThread(self.render_thread)
        self.render_base.connect(self.renderer.render_base)
        self.render_overlay.connect(self.renderer.render_overlay)
        self.renderer.base_ready.connect(self._base_ready)
        self.renderer.overlay_ready.connect(self._overlay_ready)
        self.render_thread.start()

    def stop(self) -> None:
        if self.render_thread.isRunning():
            self.render_thread.quit()
            self.render_thread.wait(60_000)

    def drawn(self) -> bool:
        """Whether the screen shows the current image, window and heatmap (no job pending)."""
        return not self._rendering

    # ------------------------------------------------------------------ the image ----
    def draw_base(self) -> None:
        """Window the image in the render thread; `_base_ready` puts it on screen."""
        shown = self._shown()
        if shown.image is None:
            return
        self._rendering.add("base")
        self.render_base.emit(self.tokens.next("base"), shown.image, shown.view.window,
                              shown.view.inverted)

    def clear(self) -> None:
        """No image: whatever is being windowed is not wanted any more."""
        self.tokens.next("base")
        self._rendering.discard("base")
        self.display, self._held = None, None
        self.view.clear()
        self._caught_up()

    def _base_ready(self, token: int, display: np.ndarray, qimage: QImage) -> None:
        if not self.tokens.is_latest("base", token) or self._shown().image is None:
            return
        self._rendering.discard("base")
        self.display = display
        if "overlay" in self._rendering:  # image and heatmap go on screen together
            self._held = qimage
            return
        self._put_base(qimage)
        self._caught_up()

    def _put_base(self, qimage: QImage | None) -> None:
        self._held = None
        if qimage is not None:
            self.view.set_base(qimage)
        self.refresh_grid()

    # ------------------------------------------------------------------ the heatmap ----
    def draw_overlay(self) -> str:
        """Colour the picked finding's heatmap in the render thread, or take it off. Returns
        why the finding has no heatmap when that is the finding's own doing (else "")."""
        shown = self._shown()
        label = shown.evidence_label()
        if label is None or shown.result is None or shown.image is None:
            self.tokens.next("overlay")  # whatever is being coloured is not wanted any more
            self._rendering.discard("overlay")
            self.view.set_overlay(None, 0)
            if self._held is not None:
                self._put_base(self._held)
            self._caught_up()
            return shown.no_evidence_note()
        # at screen resolution at most: a smooth map loses nothing, and a 14 MP image costs no
        # more than a small one; coloured in the render thread, scaled over the image by the view
        heat = self._cache.display_map(shown.result, label, overlay_size(shown.image.size))
        self._rendering.add("overlay")
        self.render_overlay.emit(self.tokens.next("overlay"), heat, shown.style)
        return ""

    def _overlay_ready(self, token: int, qimage: QImage) -> None:
        shown = self._shown()
        if not self.tokens.is_latest("overlay", token) or shown.image is None:
            return
        self._rendering.discard("overlay")
        if self._held is not None:  # in one go: no paint in between shows one without the other
            self._put_base(self._held)
        self.view.set_overlay(qimage, effective_opacity(shown.style), shown.image.size)
        self._caught_up()

    def _caught_up(self) -> None:
        if not self._rendering:
            self.caught_up.emit()

    # ------------------------------------------------------------------ the grid ----
    def grid_shown(self) -> bool:
        return self.stack.currentWidget() is self.grid

    def toggle_grid(self) -> None:
        """All findings at a glance: one tile per label from the one explanation pass."""
        if self.grid_shown():
            self.show_single()
            return
        self.fill_grid()
        self.stack.setCurrentWidget(self.grid)

    def show_single(self) -> None:
        self.stack.setCurrentWidget(self.view)

    def refresh_grid(self) -> None:
        """Fill the grid again if it is on screen (a hidden grid is filled when shown)."""
        if self.grid_shown():
            self.fill_grid()

    def fill_grid(self) -> None:
        shown = self._shown()
        self.grid.set_content(self.display, shown.result, shown.names, shown.style,
                              list(shown.order))
