"""Widgets shared by more than one tab: a float slider, a key/title combo box, a level meter, the
controls column's scroll area.

One place for them, so every tab's controls look and behave the same (compare napari's
``_qt/widgets``). Tab-specific widgets stay in their panel's modules.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QProgressBar,
    QScrollArea,
    QSlider,
    QWidget,
)

#: the level meter's floor (dBFS): quieter reads as silent
LEVEL_FLOOR_DB = -60


class FloatSlider(QWidget):
    """A slider and a spin box showing the same float value; emits ``valueChanged(float)``
    while the slider moves."""

    valueChanged = Signal(float)

    def __init__(
        self, minimum: float, maximum: float, step: float, value: float, decimals=3, parent=None
    ):
        super().__init__(parent)
        self._min, self._step = float(minimum), float(step)
        n = int(round((maximum - minimum) / step))
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, n)
        self.slider.setSingleStep(1)
        self.slider.setPageStep(max(1, n // 10))
        self.spin = QDoubleSpinBox(self)
        self.spin.setDecimals(decimals)
        self.spin.setRange(minimum, maximum)
        self.spin.setSingleStep(step)
        self.spin.setKeyboardTracking(False)
        self.spin.setFixedWidth(76)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.spin)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.spin.valueChanged.connect(self._on_spin_value_changed)
        self.setValue(value)

    def value(self) -> float:
        return float(self.spin.value())

    def setValue(self, value: float) -> None:  # noqa: N802 - Qt naming
        self.spin.setValue(float(value))

    def _on_slider_value_changed(self, position: int) -> None:
        value = self._min + position * self._step
        if not math.isclose(value, self.spin.value(), abs_tol=self._step / 2):
            self.spin.setValue(value)

    def _on_spin_value_changed(self, value: float) -> None:
        position = int(round((value - self._min) / self._step))
        if position != self.slider.value():
            self.slider.blockSignals(True)
            self.slider.setValue(position)
            self.slider.blockSignals(False)
        self.valueChanged.emit(float(value))


def combo(items: dict[str, str], min_chars: int = 16) -> QComboBox:
    """A combo box of ``{key: title}`` (``currentData()`` is the key) that does not widen its
    column to fit the longest title."""
    box = QComboBox()
    for key, title in items.items():
        box.addItem(title, key)
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(min_chars)
    return box


def scroll_column(widget: QWidget, width: int = 0, min_width: int = 0) -> QScrollArea:
    """A tab's controls column in a vertical scroll area: ``width`` fixes its width,
    ``min_width`` (instead) lets it grow from there."""
    scroll = QScrollArea()
    scroll.setWidget(widget)
    scroll.setWidgetResizable(True)
    if width:
        scroll.setFixedWidth(width)
    if min_width:
        scroll.setMinimumWidth(min_width)
    return scroll


def set_combo(box: QComboBox, key: str) -> None:
    """Select the item whose key (``currentData()``) is ``key``; nothing when there is none."""
    index = box.findData(key)
    if index >= 0:
        box.setCurrentIndex(index)


class LevelMeter(QProgressBar):
    """Peak level in dBFS (-60 to 0), red near clipping."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setRange(LEVEL_FLOOR_DB, 0)
        self.setValue(LEVEL_FLOOR_DB)
        self.setFormat("level: silent")
        self.setTextVisible(True)
        self.setMinimumWidth(160)
        self.db = float("-inf")
        self.loudest_db = float("-inf")  # since the last reset()

    def reset(self) -> None:
        self.loudest_db = float("-inf")
        self.show_peak(0.0)

    def show_peak(self, peak: float) -> None:
        self.db = 20 * np.log10(max(float(peak), 1e-9))
        self.loudest_db = max(self.loudest_db, self.db)
        self.setValue(int(max(LEVEL_FLOOR_DB, min(0.0, self.db))))
        self.setFormat(
            "level: silent" if self.db < LEVEL_FLOOR_DB else f"level: {self.db:.0f} dBFS peak"
        )
        hot = "#d62728" if self.db > -3 else "#2ca02c"
        self.setStyleSheet(f"QProgressBar::chunk {{ background: {hot}; }}")
