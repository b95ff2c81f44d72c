"""The window presets a file offers (its VOI windows and LUTs): the toolbar's box and
View > Window presets."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QMenu, QToolBar

from gradcam_viewer.imaging.image import Window


class WindowPresets(QObject):
    chosen = Signal(int)  # index into the image's presets

    def __init__(self, toolbar: QToolBar, menu: QMenu) -> None:
        super().__init__(toolbar)
        self._menu = menu
        self.box = QComboBox()
        self.box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.box.setMinimumContentsLength(18)
        self.box.setToolTip("Window presets of the file")
        self.box.activated.connect(lambda row: self.chosen.emit(self.box.itemData(row)))
        toolbar.addWidget(QLabel("  Window: "))
        toolbar.addWidget(self.box)

    def fill(self, presets: Sequence[Window]) -> None:
        self.box.clear()
        self._menu.clear()
        for i, preset in enumerate(presets):
            self.box.addItem(preset.label(), i)
            act = self._menu.addAction(preset.label())
            act.triggered.connect(lambda _c=False, k=i: self.chosen.emit(k))
