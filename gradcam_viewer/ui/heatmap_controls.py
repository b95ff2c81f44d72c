"""The Heatmap box: opacity, threshold, colour map, CAM method, contours, on/off.

It only says what the user chose (signals); the session keeps the style and the method, and
the window redraws. Opacity has a signal of its own: moving that slider changes the overlay
item's opacity and redraws nothing else.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
)

from gradcam_viewer.cam.methods import METHOD_TITLES
from gradcam_viewer.render import COLORMAPS, DEFAULT_COLORMAP, OverlayStyle


class HeatmapControls(QGroupBox):
    style_changed = Signal(object)  # OverlayStyle: threshold, colour map or contours
    opacity_changed = Signal(object)  # OverlayStyle: only the opacity differs
    method_changed = Signal(str)  # a key of METHOD_TITLES
    overlay_toggled = Signal(bool)

    def __init__(self) -> None:
        super().__init__("Heatmap")
        default = OverlayStyle()
        self.opacity = _slider(100, int(default.opacity * 100))
        self.opacity_label = QLabel()
        self.threshold = _slider(95, int(default.threshold * 100))
        self.threshold_label = QLabel()
        self.colormap = QComboBox()
        self.colormap.addItems(list(COLORMAPS))
        self.colormap.setCurrentText(DEFAULT_COLORMAP)
        self.contours = QCheckBox("Contours only (C)")
        self.overlay_box = QCheckBox("Show heatmap (O)")
        self.overlay_box.setChecked(True)
        self.method_box = QComboBox()
        for key, title in METHOD_TITLES.items():
            self.method_box.addItem(title, key)
        form = QFormLayout(self)
        form.addRow("Opacity", _row(self.opacity, self.opacity_label))
        form.addRow("Threshold", _row(self.threshold, self.threshold_label))
        form.addRow("Colormap", self.colormap)
        form.addRow("Method", self.method_box)
        form.addRow(self.contours)
        form.addRow(self.overlay_box)
        self.opacity.valueChanged.connect(self._opacity_moved)
        self.threshold.valueChanged.connect(self._changed)
        self.colormap.currentTextChanged.connect(self._changed)
        self.contours.toggled.connect(self._changed)
        self.overlay_box.toggled.connect(self.overlay_toggled)
        self.method_box.currentIndexChanged.connect(
            lambda _i: self.method_changed.emit(self.method_box.currentData()))
        self._show_values()

    def current_style(self) -> OverlayStyle:
        return OverlayStyle(opacity=self.opacity.value() / 100.0,
                            colormap=self.colormap.currentText(),
                            threshold=self.threshold.value() / 100.0,
                            contours=self.contours.isChecked())

    def cycle_method(self) -> None:
        self.method_box.setCurrentIndex((self.method_box.currentIndex() + 1)
                                        % self.method_box.count())

    def _changed(self, *_args: object) -> None:
        self._show_values()
        self.style_changed.emit(self.current_style())

    def _opacity_moved(self, _value: int) -> None:
        self._show_values()
        self.opacity_changed.emit(self.current_style())

    def _show_values(self) -> None:
        self.opacity_label.setText(f"{self.opacity.value():3d} %")
        self.threshold_label.setText(f"{self.threshold.value() / 100:.2f}")


def _slider(maximum: int, value: int) -> QSlider:
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, maximum)
    slider.setValue(value)
    return slider


def _row(slider: QSlider, label: QLabel) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(slider)
    row.addWidget(label)
    return row
