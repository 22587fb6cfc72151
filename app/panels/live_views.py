"""Plots of the Live tab: scrolling waveform, features, class probabilities, history, spikes.

Every item is created once; ``show_*`` methods update them with ``setData``/``setImage``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.plotting import color, make_plot
from app.widgets import LevelMeter


def _axis_ticks(plot: pg.PlotWidget, axis: str, names: list[str], every: int = 1) -> None:
    ticks = [(i, n) for i, n in enumerate(names) if i % every == 0]
    plot.getPlotItem().getAxis(axis).setTicks([ticks, []])


class LiveViews(QWidget):
    """Waveform (with the current window), features, probabilities, history and output spikes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.class_names: list[str] = []
        self.heard = QLabel("")
        font = QFont()
        font.setPointSize(15)
        font.setBold(True)
        self.heard.setFont(font)
        self.heard.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.level = LevelMeter()
        self.latency = QLabel("")
        header = QHBoxLayout()
        header.addWidget(self.heard, 1)
        header.addWidget(self.latency)
        header.addWidget(self.level)

        self.wave_plot = make_plot(
            "Sound (the shaded band is the window being classified)", "time (s)", "amplitude"
        )
        self.wave_curve = self.wave_plot.plot(pen=pg.mkPen(color(0), width=1))
        self.wave_curve.setDownsampling(auto=True, method="peak")
        self.wave_curve.setClipToView(True)
        self.region = pg.LinearRegionItem(movable=False, brush=(255, 127, 14, 45))
        self.region.setZValue(-10)
        self.wave_plot.addItem(self.region)
        self.sound_region = pg.LinearRegionItem(movable=False, brush=(44, 160, 44, 50))
        self.sound_region.setZValue(-11)
        self.sound_region.hide()
        self.wave_plot.addItem(self.sound_region)

        self.feat_plot = make_plot(
            "Features of that window (what the model sees)", "frame", "coefficient"
        )
        self.feat_image = pg.ImageItem(axisOrder="row-major")
        self.feat_image.setColorMap(pg.colormap.get("viridis"))
        self.feat_plot.addItem(self.feat_image)
        self.feat_plot.getPlotItem().showGrid(x=False, y=False)

        self.prob_plot = make_plot("Class probabilities", "", "probability")
        self.prob_plot.setYRange(0, 1, padding=0.02)
        self.prob_plot.setMouseEnabled(x=False, y=False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brushes=[])
        self.prob_plot.addItem(self.bars)
        # the bars' numbers for CSV export (a BarGraphItem is not a data item), not drawn
        self.prob_points = self.prob_plot.plot(pen=None, name="probability")
        self.prob_points.hide()

        self.hist_plot = make_plot("Recent history", "time (s)", "probability")
        self.hist_plot.setYRange(0, 1, padding=0.02)
        self.hist_plot.getPlotItem().addLegend(offset=(-4, 4), labelTextSize="8pt")
        self.hist_curves: list[pg.PlotDataItem] = []
        self.hist_note = pg.TextItem(
            "fills while listening, or along a long file", color=(90, 90, 90), anchor=(0.5, 0.5)
        )
        self.hist_note.setPos(0.5, 0.5)
        self.hist_plot.addItem(self.hist_note)

        self.raster_plot = make_plot("Output layer spikes (that window)", "time step", "class")
        self.raster = self.raster_plot.plot(
            pen=None,
            symbol="s",
            symbolSize=6,
            symbolBrush=(20, 20, 20),
            symbolPen=None,
            name="spike",
        )
        self.raster_note = pg.TextItem("", color=(90, 90, 90), anchor=(0.5, 0.5))
        self.raster_plot.addItem(self.raster_note)

        for plot in self.plots().values():
            for axis in ("left", "bottom"):
                plot.getPlotItem().getAxis(axis).enableAutoSIPrefix(False)

        grid = QGridLayout()
        grid.addWidget(self.wave_plot, 0, 0, 1, 2)
        grid.addWidget(self.feat_plot, 1, 0)
        grid.addWidget(self.prob_plot, 1, 1)
        grid.addWidget(self.hist_plot, 2, 0)
        grid.addWidget(self.raster_plot, 2, 1)
        for row, stretch in enumerate((3, 4, 4)):
            grid.setRowStretch(row, stretch)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(header)
        lay.addLayout(grid, 1)

    def plots(self) -> dict[str, pg.PlotWidget]:
        return {
            "waveform": self.wave_plot,
            "features": self.feat_plot,
            "probabilities": self.prob_plot,
            "history": self.hist_plot,
            "raster": self.raster_plot,
        }

    # ----- set-up
    def set_classes(self, names: list[str]) -> None:
        self.class_names = list(names)
        n = len(names)
        every = max(1, int(np.ceil(n / 12)))
        _axis_ticks(self.prob_plot, "bottom", names, every)
        _axis_ticks(self.raster_plot, "left", names, max(1, int(np.ceil(n / 16))))
        self.prob_plot.setXRange(-0.6, n - 0.4, padding=0)
        self.raster_plot.setYRange(-0.6, n - 0.4, padding=0)
        legend = self.hist_plot.getPlotItem().legend
        for curve in self.hist_curves:
            self.hist_plot.removeItem(curve)
        legend.clear()
        # the bars share these colours, so a long legend is not needed to match them
        self.hist_curves = [
            self.hist_plot.plot(pen=pg.mkPen(color(i), width=2), name=name if n <= 6 else None)
            for i, name in enumerate(names)
        ]
        self.clear()

    def clear(self) -> None:
        n = len(self.class_names)
        self.bars.setOpts(
            x=np.arange(n),
            height=np.zeros(n),
            brushes=[pg.mkBrush(*color(i), 90) for i in range(n)],
        )
        self.prob_points.setData([], [])
        for curve in self.hist_curves:
            curve.setData([], [])
        self.hist_note.setVisible(True)
        self.raster.setData([], [])
        self.feat_image.clear()
        self.wave_curve.setData([], [])
        self.region.hide()
        self.sound_region.hide()
        self.heard.setText("")
        self.raster_note.setText("")
        self.level.reset()

    # ----- updates
    def show_audio(self, t: np.ndarray, y: np.ndarray) -> None:
        self.wave_curve.setData(t, y)

    def show_window(self, start_s: float, end_s: float) -> None:
        self.region.setRegion((start_s, end_s))
        self.region.show()

    def show_sound(self, start_s: float, end_s: float) -> None:
        self.sound_region.setRegion((start_s, end_s))
        self.sound_region.show()

    def show_prediction(self, pred) -> None:
        """Bars, features and raster of one :class:`engine.live.window.WindowPrediction`."""
        probs = np.asarray(pred.probs, dtype=float)
        n = len(probs)
        brushes = [pg.mkBrush(*color(i), 255 if i == pred.label else 90) for i in range(n)]
        self.bars.setOpts(x=np.arange(n), height=probs, brushes=brushes)
        self.prob_plot.setTitle(
            "Class probabilities (a quiet window: no sound above the noise floor)"
            if getattr(pred, "quiet", False)
            else "Class probabilities"
        )
        self.prob_points.setData(np.arange(n), probs)
        if pred.features is not None:
            feats = np.asarray(pred.features)
            # coefficient 0 (loudness) dwarfs the others: scale the colours to the rest
            body = feats[1:] if feats.shape[0] > 2 else feats
            lo, hi = np.percentile(body, [2, 98])
            self.feat_image.setImage(feats, levels=(lo, hi if hi > lo else lo + 1))
            f, frames = pred.features.shape
            self.feat_image.setRect(0, 0, frames, f)
        spikes = pred.output_spikes
        if spikes is None:
            self.raster.setData([], [])
            self.raster_note.setText("this model does not spike (an ANN)")
            self.raster_note.setPos(5, (n - 1) / 2)
        else:
            t_idx, c_idx = np.nonzero(np.asarray(spikes) > 0)
            self.raster.setData(t_idx.astype(float), c_idx.astype(float))
            self.raster_plot.setXRange(-0.5, spikes.shape[0] - 0.5, padding=0)
            self.raster_note.setText("" if len(t_idx) else "no output spikes in this window")
            self.raster_note.setPos(spikes.shape[0] / 2, (n - 1) / 2)

    def show_history(self, times: np.ndarray, probs: np.ndarray) -> None:
        """``probs [N, C]`` against ``times [N]`` (seconds); dots while there are few points."""
        if len(times) < 2:  # one point is no history: say when there will be one
            for curve in self.hist_curves:
                curve.setData([], [])
            self.hist_plot.setXRange(0, 1, padding=0)
            self.hist_note.setVisible(True)
            return
        self.hist_note.setVisible(False)
        self.hist_plot.enableAutoRange(x=True)
        few = len(times) < 4
        for i, curve in enumerate(self.hist_curves):
            if i < probs.shape[1]:
                curve.setData(
                    times,
                    probs[:, i],
                    symbol="o" if few else None,
                    symbolSize=7,
                    symbolBrush=color(i),
                    symbolPen=None,
                )

    def show_heard(self, text: str) -> None:
        self.heard.setText(text)

    def show_latency(self, text: str) -> None:
        self.latency.setText(text)
