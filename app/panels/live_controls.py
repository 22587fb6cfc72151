"""The Live tab's left column: model, microphone, window and hop, audio files."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.settings import read_value
from engine.train.unknown import DEFAULT_THRESHOLD, UNKNOWN

NO_MODEL = (
    "No model loaded. To get going, download a data set from the Data tab's Examples menu "
    "(or record your own clips in this tab's record mode) and train on it in the Training tab "
    "(the model appears here when it is saved), or open a checkpoint file (best.pt)."
)


def _wrapping(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


class LiveControls(QWidget):
    """Widgets only; the panel connects their signals to its handlers."""

    def __init__(self, parent=None):
        super().__init__(parent)
        model_box = QGroupBox("Model")
        self.model_info = _wrapping(NO_MODEL)
        self.open_checkpoint = QPushButton("Open checkpoint...")
        self.follow_training = QCheckBox("Follow the Training tab's model")
        self.follow_training.setChecked(True)
        self.follow_training.setToolTip(
            "Load each checkpoint the Training tab saves or selects (best.pt of the current run)"
        )
        m = QVBoxLayout(model_box)
        m.addWidget(self.model_info)
        m.addWidget(self.open_checkpoint)
        m.addWidget(self.follow_training)

        mic_box = QGroupBox("Microphone")
        self.device = QComboBox()
        self.device.setToolTip("Capture device (PortAudio's list)")
        self.refresh = QPushButton("Refresh")
        self.refresh.setToolTip("Read the device list again (a microphone plugged in since)")
        row = QHBoxLayout()
        row.addWidget(self.device, 1)
        row.addWidget(self.refresh)
        self.window = QDoubleSpinBox()
        self.window.setRange(0.0, 10.0)
        self.window.setSingleStep(0.1)
        self.window.setDecimals(2)
        self.window.setSuffix(" s")
        self.window.setSpecialValueText("the model's clip")
        self.window.setToolTip("Window length; the model's clip length is what it was trained on")
        self.hop = QDoubleSpinBox()
        self.hop.setRange(0.05, 2.0)
        self.hop.setSingleStep(0.05)
        self.hop.setDecimals(2)
        self.hop.setValue(0.25)
        self.hop.setSuffix(" s")
        self.hop.setToolTip("Time between two classified windows")
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setValue(DEFAULT_THRESHOLD)
        self.threshold.setToolTip(
            "Say 'unknown' when the most likely class has a lower probability than this "
            "(or the window is quiet); 0 always names a class"
        )
        form = QFormLayout()
        form.addRow("Window", self.window)
        form.addRow("Hop", self.hop)
        form.addRow("Unknown under", self.threshold)
        self.start = QPushButton("Start listening")
        self.start.setCheckable(True)
        self.mic_status = _wrapping("")
        mv = QVBoxLayout(mic_box)
        mv.addLayout(row)
        mv.addLayout(form)
        mv.addWidget(self.start)
        mv.addWidget(self.mic_status)

        file_box = QGroupBox("Audio files")
        self.open_file = QPushButton("Classify an audio file...")
        self.file_info = _wrapping("...or drop audio files onto this tab.")
        fv = QVBoxLayout(file_box)
        fv.addWidget(self.open_file)
        fv.addWidget(self.file_info)

        lay = QVBoxLayout(self)
        lay.addWidget(model_box)
        lay.addWidget(mic_box)
        lay.addWidget(file_box)
        lay.addStretch(1)

    # ----- values
    def window_s(self) -> float | None:
        return self.window.value() or None

    def device_index(self) -> int | None:
        data = self.device.currentData()
        return None if data is None else int(data)

    def set_devices(self, devices) -> None:
        """Fill the picker with ``engine.live.listen.InputDevice`` items; keeps the choice if present."""
        current = self.device.currentText()
        self.device.blockSignals(True)
        self.device.clear()
        for d in devices:
            self.device.addItem(d.label, d.index)
        wanted = self.device.findText(current) if current else -1
        if wanted < 0:
            wanted = next((i for i, d in enumerate(devices) if d.is_default), 0)
        self.device.setCurrentIndex(wanted if devices else -1)
        self.device.blockSignals(False)
        self.device.setEnabled(bool(devices))

    def set_message(self, text: str, error: bool = False) -> None:
        self.mic_status.setText(text)
        self.mic_status.setStyleSheet("color: #b00020; font-weight: bold;" if error else "")

    def set_listening(self, on: bool) -> None:
        self.start.blockSignals(True)
        self.start.setChecked(on)
        self.start.blockSignals(False)
        self.start.setText("Stop" if on else "Start listening")
        for w in (self.device, self.refresh, self.window, self.hop, self.open_checkpoint):
            w.setEnabled(not on)
        self.open_file.setEnabled(not on)
        if not on:
            self.device.setEnabled(self.device.count() > 0)

    # ----- persistence
    def save_state(self, s) -> None:
        s.setValue("window", self.window.value())
        s.setValue("hop", self.hop.value())
        s.setValue("threshold", self.threshold.value())
        s.setValue("device", self.device.currentText())
        s.setValue("follow_training", self.follow_training.isChecked())

    def restore_state(self, s) -> None:
        self.window.setValue(read_value(s, "window", 0.0, float))
        self.hop.setValue(read_value(s, "hop", 0.25, float))
        self.threshold.setValue(read_value(s, "threshold", DEFAULT_THRESHOLD, float))
        self.follow_training.setChecked(read_value(s, "follow_training", True, bool))
        index = self.device.findText(read_value(s, "device", "", str))
        if index >= 0:
            self.device.setCurrentIndex(index)


def said(pred, threshold: float) -> str:
    """The class name to show for a prediction, or ``unknown`` under ``threshold`` (or quiet);
    read at display time, so the spin box applies at once."""
    if getattr(pred, "quiet", False) or pred.confidence < threshold:
        return UNKNOWN
    return pred.class_name
