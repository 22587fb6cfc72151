"""The Neuron tab: a LIF (or Lapicque, or synaptic) neuron responding live to its settings.

The report's section 2.2 made interactive: eq. 2-3 simulated by ``engine.neuro.simulate.simulate`` on
every slider move, a population raster, and the surrogate gradients of section 3.4.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from PySide6.QtWidgets import QHBoxLayout, QTabWidget, QWidget

from app.panels.neuron_controls import NeuronControls
from app.panels.neuron_views import PopulationView, SingleNeuronView, SurrogateView
from app.settings import read_value
from app.widgets import scroll_column
from engine.errors import SnnError
from engine.neuro.simulate import MODELS, make_input, population_input, simulate

DRAW_RANGE = (-1.0, 2.5)  # the input plot's fixed y range while drawing


class NeuronPanel(QWidget):
    """Controls on the left; single-neuron, population and surrogate views on the right."""

    def __init__(self, context, parent=None):
        super().__init__(parent)
        self.context = context
        self.controls = NeuronControls()
        scroll = scroll_column(self.controls, width=370)
        self.single = SingleNeuronView()
        self.population = PopulationView()
        self.surrogate = SurrogateView()
        self.views = QTabWidget()
        self.views.addTab(self.single, "Single neuron")
        self.views.addTab(self.population, "Population")
        self.views.addTab(self.surrogate, "Surrogate gradients")
        lay = QHBoxLayout(self)
        lay.addWidget(scroll)
        lay.addWidget(self.views, 1)

        self.result = None  # the last single-neuron SimResult
        self.population_result = None
        self.update_ms: deque[float] = deque(maxlen=500)  # simulate + setData, per update
        self._drawn = _default_drawing(self.controls.steps.value())
        self._stroke_prev: tuple[float, float] | None = None
        self._population_dirty = True

        self.controls.changed.connect(self._on_controls_changed)
        self.controls.clearDrawingRequested.connect(self._on_controls_clear_drawing)
        self.single.draw_box.pointDrawn.connect(self._on_input_plot_point_drawn)
        self.population.changed.connect(self._on_population_changed)
        self.views.currentChanged.connect(self._on_views_current_changed)
        self.refresh()

    # ----- simulation
    def _stimulus(self) -> np.ndarray:
        ip = self.controls.input_params()
        steps = ip["steps"]
        if ip["kind"] == "drawn":
            if self._drawn.size != steps:
                self._drawn = _resample(self._drawn, steps)
            return self._drawn.copy()
        return make_input(
            ip["kind"],
            steps,
            amplitude=ip["amplitude"],
            seed=ip["seed"],
            period=ip["period"],
            width=ip["width"],
        )

    def refresh(self) -> None:
        """Re-simulate and redraw the visible views from the current settings."""
        start = time.perf_counter()
        params = self.controls.params()
        try:
            x = self._stimulus()
            self.result = simulate(x, **params)
            others = []
            if self.controls.compare.isChecked():
                for model in MODELS:
                    if model != params["model"]:
                        others.append((model, simulate(x, **{**params, "model": model})))
        except SnnError as exc:
            self.context.status(str(exc))
            return
        self.single.show_result(self.result, others)
        self._sync_drawing_mode()
        self._population_dirty = True
        if self.views.currentWidget() is self.population:
            self._refresh_population()
        self.update_ms.append((time.perf_counter() - start) * 1000.0)

    def _refresh_population(self) -> None:
        pp = self.population.params()
        ip = self.controls.input_params()
        x = ip["amplitude"] * population_input(
            ip["steps"], pp["n"], pp["p_low"], pp["p_high"], seed=ip["seed"]
        )
        try:
            self.population_result = simulate(x, **self.controls.params())
        except SnnError as exc:
            self.context.status(str(exc))
            return
        self.population.show_result(self.population_result)
        self._population_dirty = False

    def _sync_drawing_mode(self) -> None:
        drawing = self.controls.input_kind.currentData() == "drawn"
        box = self.single.draw_box
        if drawing == box.drawing:
            return
        box.drawing = drawing
        plot = self.single.input_plot
        if drawing:
            plot.setTitle("Input X[t]: drag with the left button to draw it")
            plot.setYRange(*DRAW_RANGE, padding=0)
            plot.setMouseEnabled(x=False, y=False)
        else:
            plot.setTitle("Input X[t]")
            plot.enableAutoRange(y=True)
            plot.setMouseEnabled(x=True, y=True)

    # ----- handlers
    def _on_controls_changed(self) -> None:
        self.refresh()

    def _on_population_changed(self) -> None:
        self._population_dirty = True
        if self.views.currentWidget() is self.population:
            self._refresh_population()

    def _on_views_current_changed(self, _index: int) -> None:
        if self.views.currentWidget() is self.population and self._population_dirty:
            self._refresh_population()

    def _on_controls_clear_drawing(self) -> None:
        self._drawn = np.zeros(self.controls.steps.value())
        self.refresh()

    def _on_input_plot_point_drawn(self, t: float, value: float, first: bool) -> None:
        value = float(np.clip(value, *DRAW_RANGE))
        t = float(np.clip(t, 0, self._drawn.size - 1))
        t0, v0 = (t, value) if first or self._stroke_prev is None else self._stroke_prev
        lo, hi = sorted((t0, t))
        idx = np.arange(int(np.ceil(lo)), int(np.floor(hi)) + 1)
        if idx.size == 0:
            idx = np.array([int(round(t))])
        # paint the stroke segment onto the current, interpolating between mouse events
        if hi > lo:
            ends = [v0, value] if t0 <= t else [value, v0]
            self._drawn[idx] = np.interp(idx, [lo, hi], ends)
        else:
            self._drawn[idx] = value
        self._stroke_prev = (t, value)
        self.refresh()

    # ----- main-window hooks
    def save_state(self, s) -> None:
        self.controls.save_state(s)
        s.setValue("view", self.views.currentIndex())
        for key, value in self.population.params().items():
            s.setValue(f"population/{key}", value)
        s.setValue("surrogate/name", self.surrogate.choice.currentData())
        s.setValue("surrogate/slope", self.surrogate.slope.value())
        s.setValue("drawn", ",".join(f"{v:.4g}" for v in self._drawn))

    def restore_state(self, s) -> None:
        text = read_value(s, "drawn", "", str)
        if text:
            try:
                self._drawn = np.array([float(v) for v in text.split(",")])
            except ValueError:
                pass
        self.population.n.setValue(read_value(s, "population/n", self.population.n.value(), int))
        self.population.p_low.setValue(read_value(s, "population/p_low", 0.02, float))
        self.population.p_high.setValue(read_value(s, "population/p_high", 0.4, float))
        index = self.surrogate.choice.findData(read_value(s, "surrogate/name", "arctan", str))
        if index >= 0:
            self.surrogate.choice.setCurrentIndex(index)
        self.surrogate.slope.setValue(
            read_value(s, "surrogate/slope", self.surrogate.slope.value(), float)
        )
        self.views.setCurrentIndex(read_value(s, "view", 0, int))
        self.controls.restore_state(s)  # emits changed -> refresh

    def prepare_screenshot(self, options: dict) -> None:
        self.refresh()

    def screenshot_ready(self) -> bool:
        return self.result is not None


def _default_drawing(steps: int) -> np.ndarray:
    """A hand-drawn-looking example so the mode shows something before the user draws."""
    t = np.arange(steps)
    return np.where((t >= 20) & (t < 80), 0.25, 0.0) + np.where(
        t >= 110, 0.6 * np.sin(t / 9.0) ** 2, 0
    )


def _resample(values: np.ndarray, steps: int) -> np.ndarray:
    if values.size == 0:
        return np.zeros(steps)
    return np.interp(np.linspace(0, values.size - 1, steps), np.arange(values.size), values)
