"""Controls of the Neuron tab: the form of neuron and input settings (shared widgets: app.widgets)."""

from __future__ import annotations

import math

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import read_value
from app.widgets import FloatSlider, combo, set_combo

MODEL_TITLES = {
    "lif": "Leaky integrate-and-fire",
    "lapicque": "Lapicque (RC)",
    "synaptic": "Synaptic (2nd order)",
}
RESET_TITLES = {"subtract": "Subtract threshold", "zero": "To zero", "none": "None"}
INPUT_TITLES = {
    "random": "Random spike train (Fig. 13)",
    "step": "Step current",
    "pulses": "Pulse train",
    "drawn": "Drawn by hand",
}


class NeuronControls(QWidget):
    """Neuron model, decay, threshold, weight, reset and input settings.

    Signals
    -------
    changed()
        Any setting changed (the panel re-simulates).
    clearDrawingRequested()
        The user asked to erase the hand-drawn current.
    """

    changed = Signal()
    clearDrawingRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)

        neuron = QGroupBox("Neuron")
        form = QFormLayout(neuron)
        self.model = combo(MODEL_TITLES)
        form.addRow("Model", self.model)
        self.use_tau = QRadioButton("tau and dt")
        self.use_beta = QRadioButton("beta directly")
        self.use_beta.setChecked(True)
        row = QHBoxLayout()
        row.addWidget(self.use_beta)
        row.addWidget(self.use_tau)
        form.addRow("Decay", row)
        self.beta = FloatSlider(0.01, 0.999, 0.001, 0.819)
        form.addRow("beta", self.beta)
        self.tau = FloatSlider(0.5, 100.0, 0.5, 5.0, decimals=1)
        form.addRow("tau", self.tau)
        self.dt = FloatSlider(0.1, 5.0, 0.1, 1.0, decimals=1)
        form.addRow("dt", self.dt)
        self.beta_note = QLabel()
        self.beta_note.setStyleSheet("color: #555;")
        form.addRow("", self.beta_note)
        self.threshold = FloatSlider(0.1, 3.0, 0.01, 1.0, decimals=2)
        form.addRow("Threshold U_thr", self.threshold)
        self.weight = FloatSlider(-1.0, 2.0, 0.01, 0.4, decimals=2)
        form.addRow("Weight W", self.weight)
        self.reset = combo(RESET_TITLES)
        form.addRow("Reset", self.reset)
        self.alpha = FloatSlider(0.0, 0.99, 0.01, 0.8, decimals=2)
        self.alpha_label = QLabel("Synaptic alpha")
        form.addRow(self.alpha_label, self.alpha)
        self.compare = QCheckBox("Overlay the other two models")
        form.addRow("", self.compare)
        root.addWidget(neuron)

        stim = QGroupBox("Input")
        sform = QFormLayout(stim)
        self.input_kind = combo(INPUT_TITLES)
        sform.addRow("Type", self.input_kind)
        self.amplitude = FloatSlider(0.0, 3.0, 0.01, 1.0, decimals=2)
        sform.addRow("Amplitude", self.amplitude)
        self.period = QSpinBox()
        self.period.setRange(2, 200)
        self.period.setValue(20)
        sform.addRow("Pulse period", self.period)
        self.width = QSpinBox()
        self.width.setRange(1, 200)
        self.width.setValue(5)
        sform.addRow("Pulse width", self.width)
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        sform.addRow("Seed", self.seed)
        self.steps = QSpinBox()
        self.steps.setRange(20, 2000)
        self.steps.setValue(200)
        sform.addRow("Time steps", self.steps)
        self.draw_hint = QLabel("Drag on the input plot with the left button to draw the current.")
        self.draw_hint.setWordWrap(True)
        self.clear_drawing = QPushButton("Clear drawing")
        sform.addRow(self.draw_hint)
        sform.addRow(self.clear_drawing)
        root.addWidget(stim)
        root.addStretch(1)

        for slider in (
            self.beta,
            self.tau,
            self.dt,
            self.threshold,
            self.weight,
            self.alpha,
            self.amplitude,
        ):
            slider.valueChanged.connect(self._on_any_changed)
        for box in (self.model, self.reset, self.input_kind):
            box.currentIndexChanged.connect(self._on_any_changed)
        for spin in (self.period, self.width, self.seed, self.steps):
            spin.valueChanged.connect(self._on_any_changed)
        self.use_tau.toggled.connect(self._on_any_changed)
        self.compare.toggled.connect(self._on_any_changed)
        self.clear_drawing.clicked.connect(self.clearDrawingRequested)
        self._sync_visibility()

    # ----- values the panel reads
    def params(self) -> dict:
        """Keyword arguments for ``engine.neuro.simulate.simulate`` (without the input)."""
        p = {
            "model": self.model.currentData(),
            "threshold": self.threshold.value(),
            "weight": self.weight.value(),
            "reset": self.reset.currentData(),
            "alpha": self.alpha.value(),
        }
        if self.use_tau.isChecked():
            p.update(tau=self.tau.value(), dt=self.dt.value())
        else:
            p["beta"] = self.beta.value()
        return p

    def input_params(self) -> dict:
        return {
            "kind": self.input_kind.currentData(),
            "steps": self.steps.value(),
            "amplitude": self.amplitude.value(),
            "seed": self.seed.value(),
            "period": self.period.value(),
            "width": self.width.value(),
        }

    def _on_any_changed(self, *_args) -> None:
        self._sync_visibility()
        self.changed.emit()

    def _sync_visibility(self) -> None:
        tau_mode = self.use_tau.isChecked()
        self.beta.setEnabled(not tau_mode)
        self.tau.setEnabled(tau_mode)
        self.dt.setEnabled(tau_mode)
        if tau_mode:
            beta = math.exp(-self.dt.value() / self.tau.value())
            self.beta_note.setText(f"beta = exp(-dt/tau) = {beta:.4f}")
        else:
            tau = -1.0 / math.log(self.beta.value())
            self.beta_note.setText(f"tau = -dt/ln(beta) = {tau:.2f} steps")
        synaptic = self.model.currentData() == "synaptic"
        self.alpha.setVisible(synaptic)
        self.alpha_label.setVisible(synaptic)
        kind = self.input_kind.currentData()
        self.period.setEnabled(kind == "pulses")
        self.width.setEnabled(kind == "pulses")
        self.seed.setEnabled(kind == "random")
        self.amplitude.setEnabled(kind != "drawn")
        self.draw_hint.setVisible(kind == "drawn")
        self.clear_drawing.setVisible(kind == "drawn")

    # ----- persistence
    _SLIDERS = ("beta", "tau", "dt", "threshold", "weight", "alpha", "amplitude")
    _SPINS = ("period", "width", "seed", "steps")
    _COMBOS = ("model", "reset", "input_kind")

    def save_state(self, s) -> None:
        for name in self._SLIDERS:
            s.setValue(name, getattr(self, name).value())
        for name in self._SPINS:
            s.setValue(name, getattr(self, name).value())
        for name in self._COMBOS:
            s.setValue(name, getattr(self, name).currentData())
        s.setValue("use_tau", self.use_tau.isChecked())
        s.setValue("compare", self.compare.isChecked())

    def restore_state(self, s) -> None:
        self.blockSignals(True)
        try:
            for name in self._SLIDERS:
                w = getattr(self, name)
                w.setValue(read_value(s, name, w.value(), float))
            for name in self._SPINS:
                w = getattr(self, name)
                w.setValue(read_value(s, name, w.value(), int))
            for name in self._COMBOS:
                w = getattr(self, name)
                set_combo(w, read_value(s, name, w.currentData(), str))
            if read_value(s, "use_tau", False, bool):
                self.use_tau.setChecked(True)
            else:
                self.use_beta.setChecked(True)
            self.compare.setChecked(read_value(s, "compare", False, bool))
        finally:
            self.blockSignals(False)
        self._sync_visibility()
        self.changed.emit()
