"""Plots of the Neuron tab: one neuron (input, membrane, spikes), a population, surrogates.

Each view creates its plot items once and updates them with ``setData``/``setImage``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.plotting import color, make_image_plot, make_plot
from app.widgets import FloatSlider
from engine.neuro.simulate import SimResult
from engine.neuro.surrogate import SURROGATES, curves, default_slope

SURROGATE_TITLES = {"arctan": "arctan", "sigmoid": "sigmoid", "fast_sigmoid": "fast sigmoid"}


class DrawViewBox(pg.ViewBox):
    """A ViewBox on which the user draws with the left button while ``drawing`` is on.

    Signals
    -------
    pointDrawn(float, float, bool)
        A point (time, value) of the stroke; the flag is True for the first point of a stroke.
    """

    pointDrawn = Signal(float, float, bool)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.drawing = False

    def _emit(self, scene_pos, first: bool) -> None:
        p = self.mapSceneToView(scene_pos)
        self.pointDrawn.emit(float(p.x()), float(p.y()), first)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 - pyqtgraph API
        if not self.drawing or ev.button() != Qt.MouseButton.LeftButton:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        if ev.isStart():
            self._emit(ev.buttonDownScenePos(), True)
        self._emit(ev.scenePos(), False)

    def mouseClickEvent(self, ev):  # noqa: N802 - pyqtgraph API
        if self.drawing and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self._emit(ev.scenePos(), True)
            return
        super().mouseClickEvent(ev)


class SingleNeuronView(QWidget):
    """Three plots sharing the time axis: input (and synaptic current), membrane with the
    threshold line, spikes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.draw_box = DrawViewBox()
        self.input_plot = make_plot("Input X[t]", "", "input", view_box=self.draw_box)
        self.mem_plot = make_plot("Membrane potential U[t]", "", "U")
        self.spike_plot = make_plot("Output spikes S[t]", "time step", "")
        for p in (self.mem_plot, self.spike_plot):
            p.setXLink(self.input_plot)
        for p in (self.input_plot, self.mem_plot, self.spike_plot):
            p.getPlotItem().getAxis("left").setWidth(48)
        self.mem_plot.getPlotItem().addLegend(offset=(-8, 4), labelTextSize="8pt")
        self.spike_plot.setYRange(0, 1.15, padding=0)
        self.spike_plot.getPlotItem().getAxis("left").setTicks([[(0, "0"), (1, "1")]])
        self.spike_plot.setMouseEnabled(y=False)

        self.input_curve = self.input_plot.plot(
            name="input", pen=pg.mkPen(color(0), width=2), stepMode="left"
        )
        self.syn_curve = self.input_plot.plot(
            name="synaptic current", pen=pg.mkPen(color(2), width=2, style=Qt.PenStyle.DashLine)
        )
        self.compare_curves = [
            self.mem_plot.plot(name=f"other{i}", pen=pg.mkPen((*color(4 + i), 140), width=1.5))
            for i in range(2)
        ]
        self.mem_curve = self.mem_plot.plot(name="membrane", pen=pg.mkPen(color(0), width=2))
        self.thr_curve = self.mem_plot.plot(
            name="threshold", pen=pg.mkPen(color(3), width=1.5, style=Qt.PenStyle.DashLine)
        )
        # S[t] at every step as 1-step-wide filled bars: a spike is a black bar, CSV holds S[t]
        self.spike_curve = self.spike_plot.plot(
            name="spikes", stepMode="left", fillLevel=0, brush="k", pen=pg.mkPen("k", width=1)
        )
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.input_plot, 3)
        lay.addWidget(self.mem_plot, 4)
        lay.addWidget(self.spike_plot, 2)
        lay.addWidget(self.summary)

    def show_result(
        self, res: SimResult, others: list[tuple[str, SimResult]] | None = None
    ) -> None:
        t = np.arange(res.steps, dtype=float)
        self.input_curve.setData(t, res.input)
        if res.synaptic is not None:
            self.syn_curve.setData(t, res.synaptic)
        else:
            self.syn_curve.setData([], [])
        self.mem_curve.setData(t, res.membrane)
        self.thr_curve.setData([0.0, t[-1]], [res.threshold, res.threshold])
        others = others or []
        for i, curve in enumerate(self.compare_curves):
            if i < len(others):
                name, other = others[i]
                curve.setData(t, other.membrane)
                curve.opts["name"] = name
            else:
                curve.setData([], [])
        self._refresh_legend(others)
        self.spike_curve.setData(t, res.spikes)
        times = np.flatnonzero(res.spikes)
        first = f", first at step {times[0]}" if times.size else ""
        decay = f"beta = {res.beta:.4f}"
        if res.model == "lapicque":
            r, c = res.params["resistance"], res.params["capacitance"]
            euler = 1.0 - res.dt / (r * c)
            decay = f"R = {r:.3g}, C = {c:.3g}, Euler decay 1 - dt/RC = {euler:.4f}"
            if euler < 0:
                decay += " (dt > RC: the Euler step overshoots and oscillates)"
        self.summary.setText(
            f"{res.spike_count} spikes in {res.steps} steps (rate {res.firing_rate:.3f} per step)"
            f"{first}; {decay}; max U = {res.membrane.max():.3f}"
        )

    def _refresh_legend(self, others) -> None:
        legend = self.mem_plot.getPlotItem().legend
        legend.clear()
        for i, (name, _) in enumerate(others):
            legend.addItem(self.compare_curves[i], name)
        legend.addItem(self.mem_curve, "membrane")
        legend.addItem(self.thr_curve, "threshold")


class PopulationView(QWidget):
    """N neurons driven by random spike trains: raster and firing-rate histogram.

    Signals
    -------
    changed()
        The population settings changed.
    """

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.n = QSpinBox()
        self.n.setRange(2, 2000)
        self.n.setValue(100)
        self.p_low = FloatSlider(0.0, 1.0, 0.01, 0.02, decimals=2)
        self.p_high = FloatSlider(0.0, 1.0, 0.01, 0.4, decimals=2)
        form = QFormLayout()
        form.addRow("Neurons N", self.n)
        form.addRow("Input spike probability, neuron 0", self.p_low)
        form.addRow("Input spike probability, neuron N-1", self.p_high)
        self.raster_plot, self.raster = make_image_plot(
            "Spike raster (black = spike)", "time step", "neuron", lock_aspect=False
        )
        self.raster_plot.getPlotItem().getViewBox().invertY(False)
        self.hist_plot = make_plot("Firing-rate histogram", "spikes per step", "neurons")
        self.hist_plot.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        self.hist_curve = self.hist_plot.plot(
            name="neurons",
            stepMode="center",
            fillLevel=0,
            brush=(*color(0), 150),
            pen=pg.mkPen(color(0), width=1.5),
        )
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        plots = QHBoxLayout()
        plots.addWidget(self.raster_plot, 3)
        plots.addWidget(self.hist_plot, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(_narrow(form))
        lay.addLayout(plots, 1)
        lay.addWidget(self.summary)
        self.n.valueChanged.connect(self.changed)
        self.p_low.valueChanged.connect(self.changed)
        self.p_high.valueChanged.connect(self.changed)

    def params(self) -> dict:
        return {"n": self.n.value(), "p_low": self.p_low.value(), "p_high": self.p_high.value()}

    def show_result(self, res: SimResult) -> None:
        # neurons on y, time on x; 1 = spike drawn black
        self.raster.setImage(res.spikes.T, levels=(0, 1), lut=_WHITE_BLACK)
        rates = res.spikes.mean(axis=0)
        top = max(float(rates.max()), 0.05)
        counts, edges = np.histogram(rates, bins=20, range=(0.0, top))
        self.hist_curve.setData(edges, counts.astype(float))
        self.summary.setText(
            f"{int(res.spikes.sum())} spikes from {rates.size} neurons; mean rate "
            f"{rates.mean():.3f}, silent neurons {int((rates == 0).sum())}"
        )


def _narrow(form: QFormLayout, width: int = 620) -> QWidget:
    """A form in a box that does not stretch its sliders across the whole window."""
    box = QWidget()
    box.setLayout(form)
    box.setMaximumWidth(width)
    return box


_WHITE_BLACK = np.array([[255, 255, 255], [0, 0, 0]], dtype=np.ubyte)


class SurrogateView(QWidget):
    """Heaviside step, the smooth approximations and their derivatives (the report's Fig. 20)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.choice = QComboBox()
        for name in SURROGATES:
            self.choice.addItem(SURROGATE_TITLES[name], name)
        self.slope = FloatSlider(0.1, 20.0, 0.1, default_slope(SURROGATES[0]), decimals=1)
        form = QFormLayout()
        form.addRow("Surrogate used for training", self.choice)
        form.addRow("Slope k", self.slope)
        self.f_plot = make_plot(
            "Spike S(U) and smooth approximations f(U - U_thr)", "U - U_thr", "S"
        )
        self.d_plot = make_plot(
            "Derivatives f'(U - U_thr) used in the backward pass", "U - U_thr", "dS/dU"
        )
        self.d_plot.setXLink(self.f_plot)
        for p in (self.f_plot, self.d_plot):
            p.getPlotItem().addLegend(offset=(8, 4), labelTextSize="8pt")
        self.x = np.linspace(-3, 3, 601)
        self.step_curve = self.f_plot.plot(
            self.x,
            (self.x >= 0).astype(float),
            name="Heaviside (forward)",
            pen=pg.mkPen("k", width=2),
        )
        self.f_curves, self.d_curves = {}, {}
        for i, name in enumerate(SURROGATES):
            self.f_curves[name] = self.f_plot.plot(name=SURROGATE_TITLES[name])
            self.d_curves[name] = self.d_plot.plot(name=SURROGATE_TITLES[name])
            self.f_curves[name].setZValue(i)
        self.note = QLabel(
            "The forward pass always uses the step; the backward pass uses the chosen derivative."
        )
        self.note.setWordWrap(True)
        plots = QHBoxLayout()
        plots.addWidget(self.f_plot)
        plots.addWidget(self.d_plot)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(_narrow(form))
        lay.addLayout(plots, 1)
        lay.addWidget(self.note)
        self.choice.currentIndexChanged.connect(self._on_choice_changed)
        self.slope.valueChanged.connect(self.redraw)
        self.redraw()

    def _on_choice_changed(self, _index: int) -> None:
        self.slope.setValue(default_slope(self.choice.currentData()))
        self.redraw()

    def redraw(self, *_args) -> None:
        chosen = self.choice.currentData()
        k = self.slope.value()
        for i, name in enumerate(SURROGATES):
            # the chosen surrogate with slope k; the others at their default slopes for reference
            f, d = curves(name, self.x, k if name == chosen else None)
            width, alpha = (3, 255) if name == chosen else (1.5, 120)
            pen = pg.mkPen((*color(i), alpha), width=width)
            self.f_curves[name].setData(self.x, f, pen=pen)
            self.d_curves[name].setData(self.x, d, pen=pen)
            self.d_curves[name].setZValue(10 if name == chosen else i)
