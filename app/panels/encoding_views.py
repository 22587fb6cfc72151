"""Plots of the Encoding tab: waveform, input, spikes at step t (animated), average, raster."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.plotting import color, grey_lut, make_image_plot, make_plot, spike_lut
from engine.neuro.encoders import EncodedView

FRAME_MS = 90  # animation: one time step per frame


class EncodingViews(QWidget):
    """All plots of the tab, created once; ``show_view`` and ``show_waveform`` update them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.wave_plot = make_plot("Waveform", "time (s)", "amplitude")
        self.wave_curve = self.wave_plot.plot(name="waveform", pen=pg.mkPen(color(0), width=1))
        self.wave_plot.getPlotItem().setDownsampling(mode="peak")
        self.wave_plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
        self.wave_plot.getPlotItem().setClipToView(True)
        self.input_plot, self.input_image = make_image_plot("Input")
        self.frame_plot, self.frame_image = make_image_plot("Spikes at step t")
        self.summary_plot, self.summary_image = make_image_plot("Average over the steps")
        self.raster_plot, self.raster_image = make_image_plot(
            "Spike raster", "time step", "input element", lock_aspect=False
        )
        self.raster_plot.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        self.raster_cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen(color(3), width=2))
        self.raster_plot.addItem(self.raster_cursor)

        self.play = QPushButton("Play")
        self.play.setCheckable(True)
        self.step = QSlider(Qt.Orientation.Horizontal)
        self.step.setRange(0, 0)
        self.step_label = QLabel("t = 0")
        self.step_label.setMinimumWidth(90)
        anim = QHBoxLayout()
        anim.addWidget(self.play)
        anim.addWidget(self.step, 1)
        anim.addWidget(self.step_label)

        self.grid = grid = QGridLayout()
        grid.addWidget(self.wave_plot, 0, 0, 1, 3)
        grid.addWidget(self.input_plot, 1, 0)
        grid.addWidget(self.frame_plot, 1, 1)
        grid.addWidget(self.summary_plot, 1, 2)
        grid.addWidget(self.raster_plot, 2, 0, 1, 3)
        grid.setRowStretch(0, 0)
        grid.setRowStretch(1, 4)
        grid.setRowStretch(2, 3)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(grid, 1)
        lay.addLayout(anim)

        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self._on_timer_timeout)
        self.play.toggled.connect(self._on_play_toggled)
        self.step.valueChanged.connect(self._on_step_value_changed)
        self.view: EncodedView | None = None
        self.wave_plot.setVisible(False)

    # ----- content
    def show_waveform(self, y: np.ndarray | None, sample_rate: int = 1) -> None:
        self.grid.setRowStretch(0, 0 if y is None else 2)
        if y is None:
            self.wave_plot.setVisible(False)
            self.wave_curve.setData([], [])
            return
        self.wave_plot.setVisible(True)
        self.wave_curve.setData(np.arange(y.size) / float(sample_rate), y)

    def show_view(self, view: EncodedView, input_title: str, audio: bool = False) -> None:
        self.view = view
        lut = _input_lut(audio)
        # an MFCC is a matrix, not a picture: let it fill the plot
        for plot in (self.input_plot, self.frame_plot, self.summary_plot):
            plot.getPlotItem().getViewBox().setAspectLocked(not audio)
        self.input_plot.setTitle(input_title)
        self.input_image.setImage(view.input, levels=(0, 1), lut=lut)
        if view.time_along_columns:
            # delta keeps changes, not levels: show the running sum on its own scale
            lo, hi = float(view.summary.min()), float(view.summary.max())
            self.summary_image.setImage(view.summary, levels=(lo, max(hi, lo + 1e-9)), lut=lut)
            self.summary_plot.setTitle("Reconstruction (running sum of spikes)")
            self.raster_plot.setTitle("Spikes over time (rows = input rows, red = off-spike)")
            self.raster_plot.setLabel("left", "coefficient" if audio else "input row")
            self.raster_image.setImage(view.raster, levels=(-1, 1), lut=spike_lut())
        else:
            self.summary_image.setImage(view.summary, levels=(0, 1), lut=lut)
            self.summary_plot.setTitle(
                "Spike time (darker = earlier)"
                if view.encoder == "latency"
                else f"Average over the {view.steps} steps"
            )
            # inputs that never spike are left out so the others get a readable row each
            active = np.flatnonzero(np.any(view.raster != 0, axis=1))
            self.raster_plot.setTitle(
                f"Spike raster: the {active.size} of {view.raster.shape[0]} inputs that spike, "
                f"over {view.steps} steps"
            )
            self.raster_plot.setLabel("left", "spiking input (row-major order)")
            rows = view.raster[active] if active.size else view.raster[:1] * 0
            self.raster_image.setImage(rows, levels=(-1, 1), lut=spike_lut())
        t = min(self.step.value(), view.spikes.shape[0] - 1)
        self.step.blockSignals(True)
        self.step.setRange(0, view.spikes.shape[0] - 1)
        self.step.setValue(t)
        self.step.blockSignals(False)
        self._show_step(t)
        for plot in (self.input_plot, self.frame_plot, self.summary_plot, self.raster_plot):
            plot.getPlotItem().getViewBox().autoRange(padding=0.02)

    def _show_step(self, t: int) -> None:
        view = self.view
        if view is None:
            return
        self.frame_image.setImage(view.spikes[t], levels=(-1, 1), lut=spike_lut())
        n = int(
            np.count_nonzero(view.spikes[t] if not view.time_along_columns else view.raster[:, t])
        )
        what = "column" if view.time_along_columns else "step"
        self.frame_plot.setTitle(f"Spikes at {what} t = {t} ({n} spikes)")
        self.step_label.setText(f"t = {t} / {view.spikes.shape[0] - 1}")
        self.raster_cursor.setPos(t + 0.5)

    # ----- animation
    def _on_play_toggled(self, on: bool) -> None:
        self.play.setText("Pause" if on else "Play")
        if on:
            self.timer.start()
        else:
            self.timer.stop()

    def _on_timer_timeout(self) -> None:
        top = self.step.maximum()
        self.step.setValue(0 if self.step.value() >= top else self.step.value() + 1)

    def _on_step_value_changed(self, t: int) -> None:
        self._show_step(t)

    def stop(self) -> None:
        self.play.setChecked(False)


def _input_lut(audio: bool) -> np.ndarray:
    """Black on white for images (as the report's figures show MNIST); a colour map for MFCCs."""
    if audio:
        return pg.colormap.get("viridis").getLookupTable(nPts=256)
    return grey_lut(inverted=True)
