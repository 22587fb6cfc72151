"""Controls of the Encoding tab: the input source and the encoder with its parameters."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.settings import read_value
from app.widgets import FloatSlider, combo

SOURCES = {
    "digits": "Built-in digits (scikit-learn, no download)",
    "mnist": "MNIST image (IDX file)",
    "image": "Image file",
    "audio": "Audio file (waveform -> MFCC)",
    "dataset": "Clip of the current data set",
}
ENCODER_TITLES = {
    "rate": "Rate (Bernoulli)",
    "latency": "Latency (time to first spike)",
    "delta": "Delta modulation",
}


class EncodingControls(QWidget):
    """Input source and encoder settings.

    Signals
    -------
    sourceChanged()
        The source kind or the item index changed (the panel reloads the input).
    openRequested()
        The user pressed "Open..." (the panel shows the file dialog for the current source).
    encoderChanged()
        The encoder or one of its parameters changed (the panel re-encodes).
    """

    sourceChanged = Signal()
    openRequested = Signal()
    encoderChanged = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)

        src = QGroupBox("Input")
        form = QFormLayout(src)
        self.source = combo(SOURCES)
        form.addRow("Source", self.source)
        self.path = QLabel()
        self.path.setWordWrap(True)
        self.path.setStyleSheet("color: #444;")
        self.open_button = QPushButton("Open...")
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(self.open_button)
        form.addRow("File", row)
        self.index = QSpinBox()
        self.index.setRange(0, 0)
        self.item_label = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.index, 1)
        row.addWidget(self.item_label, 1)
        form.addRow("Item", row)
        self.invert = QCheckBox("Invert (dark strokes on white paper)")
        form.addRow("", self.invert)
        root.addWidget(src)

        enc = QGroupBox("Encoder")
        eform = QFormLayout(enc)
        self.encoder = combo(ENCODER_TITLES)
        eform.addRow("Encoder", self.encoder)
        self.steps = QSpinBox()
        self.steps.setRange(1, 300)
        self.steps.setValue(50)
        self.steps_label = QLabel("Time steps T")
        eform.addRow(self.steps_label, self.steps)
        self.pages = QStackedWidget()
        eform.addRow(self.pages)
        # rate
        page = QWidget()
        f = QFormLayout(page)
        f.setContentsMargins(0, 0, 0, 0)
        self.gain = FloatSlider(0.0, 2.0, 0.01, 1.0, decimals=2)
        f.addRow("Gain", self.gain)
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        f.addRow("Seed", self.seed)
        self.pages.addWidget(page)
        # latency
        page = QWidget()
        f = QFormLayout(page)
        f.setContentsMargins(0, 0, 0, 0)
        self.tau = FloatSlider(0.1, 50.0, 0.1, 5.0, decimals=1)
        f.addRow("tau", self.tau)
        self.lat_threshold = FloatSlider(0.001, 0.5, 0.001, 0.01, decimals=3)
        f.addRow("Threshold", self.lat_threshold)
        self.linear = QCheckBox("Linear (else logarithmic)")
        self.normalize = QCheckBox("Normalise to use all steps")
        self.normalize.setChecked(True)
        self.clip = QCheckBox("Clip: inputs below threshold never spike")
        for box in (self.linear, self.normalize, self.clip):
            f.addRow(box)
        self.pages.addWidget(page)
        # delta
        page = QWidget()
        f = QFormLayout(page)
        f.setContentsMargins(0, 0, 0, 0)
        self.delta_threshold = FloatSlider(0.01, 1.0, 0.01, 0.1, decimals=2)
        f.addRow("Threshold", self.delta_threshold)
        self.off_spike = QCheckBox("Off-spikes (-1) for decreases")
        self.off_spike.setChecked(True)
        self.padding = QCheckBox("Padding: no spike at the first step")
        f.addRow(self.off_spike)
        f.addRow(self.padding)
        note = QLabel("Time runs along the columns (an MFCC's frames, an image left to right).")
        note.setWordWrap(True)
        f.addRow(note)
        self.pages.addWidget(page)
        root.addWidget(enc)

        self.numbers = QLabel()
        self.numbers.setWordWrap(True)
        box = QGroupBox("Spike train")
        QVBoxLayout(box).addWidget(self.numbers)
        root.addWidget(box)
        root.addStretch(1)

        self.source.currentIndexChanged.connect(self._on_source_changed)
        self.index.valueChanged.connect(self.sourceChanged)
        self.invert.toggled.connect(self.sourceChanged)
        self.open_button.clicked.connect(self.openRequested)
        self.encoder.currentIndexChanged.connect(self._on_encoder_changed)
        for w in (self.gain, self.tau, self.lat_threshold, self.delta_threshold):
            w.valueChanged.connect(self.encoderChanged)
        for w in (self.steps, self.seed):
            w.valueChanged.connect(self.encoderChanged)
        for w in (self.linear, self.normalize, self.clip, self.off_spike, self.padding):
            w.toggled.connect(self.encoderChanged)
        self._sync()

    def source_kind(self) -> str:
        return self.source.currentData()

    def encoder_name(self) -> str:
        return self.encoder.currentData()

    def encoder_params(self) -> dict:
        name = self.encoder_name()
        if name == "rate":
            return {"gain": self.gain.value(), "seed_or_generator": self.seed.value()}
        if name == "latency":
            return {
                "tau": self.tau.value(),
                "threshold": self.lat_threshold.value(),
                "linear": self.linear.isChecked(),
                "normalize": self.normalize.isChecked(),
                "clip": self.clip.isChecked(),
            }
        return {
            "threshold": self.delta_threshold.value(),
            "off_spike": self.off_spike.isChecked(),
            "padding": self.padding.isChecked(),
        }

    def set_items(self, count: int, label: str = "") -> None:
        """How many items the current source has (the index spin box's range)."""
        self.index.blockSignals(True)
        self.index.setRange(0, max(0, count - 1))
        self.index.setEnabled(count > 1)
        self.index.blockSignals(False)
        self.item_label.setText(label)

    def _on_source_changed(self, _index: int) -> None:
        self._sync()
        self.sourceChanged.emit()

    def _on_encoder_changed(self, _index: int) -> None:
        self._sync()
        self.encoderChanged.emit()

    def _sync(self) -> None:
        self.pages.setCurrentIndex(list(ENCODER_TITLES).index(self.encoder_name()))
        delta = self.encoder_name() == "delta"
        self.steps.setEnabled(not delta)
        kind = self.source_kind()
        self.open_button.setEnabled(kind in ("mnist", "image", "audio"))
        self.invert.setEnabled(kind in ("mnist", "image", "digits"))

    # ----- persistence
    def save_state(self, s) -> None:
        s.setValue("source", self.source_kind())
        s.setValue("index", self.index.value())
        s.setValue("invert", self.invert.isChecked())
        s.setValue("encoder", self.encoder_name())
        s.setValue("steps", self.steps.value())
        s.setValue("seed", self.seed.value())
        for name in ("gain", "tau", "lat_threshold", "delta_threshold"):
            s.setValue(name, getattr(self, name).value())
        for name in ("linear", "normalize", "clip", "off_spike", "padding"):
            s.setValue(name, getattr(self, name).isChecked())

    def restore_state(self, s) -> None:
        """Restore settings without emitting (the panel reloads once afterwards)."""
        widgets = [self, self.source, self.index, self.encoder, self.steps, self.seed]
        for w in widgets:
            w.blockSignals(True)
        try:
            i = self.source.findData(read_value(s, "source", self.source_kind(), str))
            if i >= 0:
                self.source.setCurrentIndex(i)
            i = self.encoder.findData(read_value(s, "encoder", self.encoder_name(), str))
            if i >= 0:
                self.encoder.setCurrentIndex(i)
            self.steps.setValue(read_value(s, "steps", self.steps.value(), int))
            self.seed.setValue(read_value(s, "seed", 0, int))
            for name in ("gain", "tau", "lat_threshold", "delta_threshold"):
                w = getattr(self, name)
                w.blockSignals(True)
                w.setValue(read_value(s, name, w.value(), float))
                w.blockSignals(False)
            for name in ("linear", "normalize", "clip", "off_spike", "padding", "invert"):
                w = getattr(self, name)
                w.blockSignals(True)
                w.setChecked(read_value(s, name, w.isChecked(), bool))
                w.blockSignals(False)
            self.index.setRange(0, 1_000_000)
            self.index.setValue(read_value(s, "index", 0, int))
        finally:
            for w in widgets:
                w.blockSignals(False)
        self._sync()
