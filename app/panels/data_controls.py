"""Controls of the Data tab: the data set bar (spec, browse, examples) and the feature form."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.settings import read_value
from engine.audio.features import NORMALISE, FeatureConfig
from engine.errors import ConfigError


class DataBar(QWidget):
    """``Data set: [spec] [Open] [Folder...] [CSV...] [Examples]``.

    Signals
    -------
    specEntered(str)
        The user asked to open the spec in the line edit (Return or Open).
    browseRequested(str)
        ``"folder"`` or ``"csv"``: the user wants a file dialog.
    fetchRequested(str)
        The name of a published data set to download (if needed) and open.
    """

    specEntered = Signal(str)
    browseRequested = Signal(str)
    fetchRequested = Signal(str)

    def __init__(
        self,
        examples: list[tuple[str, str]],
        fetchable: list[tuple[str, str]] = (),
        parent=None,
    ):
        super().__init__(parent)
        self.spec = QLineEdit()
        self.spec.setPlaceholderText(
            "folder:PATH, csv:PATH, fsdd:PATH, mnist:PATH, shd:PATH... a bare path, "
            "or a downloaded set's name (fsdd, esc50...)"
        )
        self.spec.setClearButtonEnabled(True)
        self.open_button = QPushButton("Open")
        self.folder_button = QPushButton("Folder...")
        self.folder_button.setToolTip("A folder with one sub-folder of audio files per class")
        self.csv_button = QPushButton("CSV...")
        self.csv_button.setToolTip("A manifest: path,label[,split[,group]], paths relative to it")
        self.examples = QToolButton()
        self.examples.setText("Examples")
        self.examples.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.examples)
        for title, spec in examples:
            menu.addAction(title).triggered.connect(lambda _=False, s=spec: self._pick(s))
        if fetchable:
            menu.addSection("Published data sets (downloaded once, then opened)")
        for title, name in fetchable:
            act = menu.addAction(title)
            act.setData(name)
            act.triggered.connect(lambda _=False, n=name: self.fetchRequested.emit(n))
        self.examples.setMenu(menu)
        self.examples.setEnabled(bool(examples) or bool(fetchable))
        self.examples.setToolTip("Data sets in ../shared/data, and published ones to download")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Data set:"))
        lay.addWidget(self.spec, 1)
        for w in (self.open_button, self.folder_button, self.csv_button, self.examples):
            lay.addWidget(w)
        self.spec.returnPressed.connect(self._on_spec_return_pressed)
        self.open_button.clicked.connect(self._on_spec_return_pressed)
        self.folder_button.clicked.connect(lambda: self.browseRequested.emit("folder"))
        self.csv_button.clicked.connect(lambda: self.browseRequested.emit("csv"))

    def refresh_fetchable(self, fetchable: list[tuple[str, str]]) -> None:
        """New texts for the published sets' menu entries (after a download)."""
        titles = dict((name, title) for title, name in fetchable)
        for act in self.examples.menu().actions():
            if act.data() in titles:
                act.setText(titles[act.data()])

    def _pick(self, spec: str) -> None:
        self.spec.setText(spec)
        self.specEntered.emit(spec)

    def _on_spec_return_pressed(self) -> None:
        text = self.spec.text().strip()
        if text:
            self.specEntered.emit(text)


class FeatureForm(QGroupBox):
    """The MFCC / log-mel parameters, and the "compute features" job's button and progress.

    Signals
    -------
    configChanged()
        A parameter changed (the examples are re-featurised).
    computeRequested(), cancelRequested()
    """

    configChanged = Signal()
    computeRequested = Signal()
    cancelRequested = Signal()

    def __init__(self, parent=None):
        super().__init__("Features", parent)
        d = FeatureConfig()
        self.kind = QComboBox()
        self.kind.addItem("MFCC", "mfcc")
        self.kind.addItem("log-mel spectrogram", "logmel")
        self.sample_rate = self._spin(1000, 96000, d.sample_rate, " Hz", step=1000)
        self.duration = QDoubleSpinBox()
        self.duration.setRange(0.1, 60.0)
        self.duration.setSingleStep(0.1)
        self.duration.setSuffix(" s")
        self.duration.setValue(d.duration)
        self.n_mfcc = self._spin(1, 128, d.n_mfcc)
        self.n_mels = self._spin(4, 256, d.n_mels)
        self.n_fft = self._spin(32, 8192, d.n_fft)
        self.hop = self._spin(8, 4096, d.hop_length)
        self.normalise = QComboBox()
        for name in NORMALISE:
            self.normalise.addItem(name, name)
        self.normalise.setCurrentIndex(NORMALISE.index(d.normalise))
        self.trim = QCheckBox("trim leading/trailing silence")
        self.shape_label = QLabel()
        self.compute = QPushButton("Compute features for the whole data set")
        self.compute.setToolTip("Fills the on-disk cache (every core); a second run reads it")
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.result = QLabel()
        self.result.setWordWrap(True)
        form = QFormLayout()
        form.addRow("kind", self.kind)
        form.addRow("sample rate", self.sample_rate)
        form.addRow("clip duration", self.duration)
        form.addRow("MFCCs", self.n_mfcc)
        form.addRow("mel bands", self.n_mels)
        form.addRow("FFT / window", self.n_fft)
        form.addRow("hop", self.hop)
        form.addRow("normalise", self.normalise)
        form.addRow(self.trim)
        buttons = QHBoxLayout()
        buttons.addWidget(self.compute, 1)
        buttons.addWidget(self.cancel)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.shape_label)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.result)
        for w in (self.sample_rate, self.n_mfcc, self.n_mels, self.n_fft, self.hop):
            w.valueChanged.connect(self._on_field_changed)
        self.duration.valueChanged.connect(self._on_field_changed)
        self.kind.currentIndexChanged.connect(self._on_field_changed)
        self.normalise.currentIndexChanged.connect(self._on_field_changed)
        self.trim.toggled.connect(self._on_field_changed)
        self.compute.clicked.connect(self.computeRequested)
        self.cancel.clicked.connect(self.cancelRequested)
        self._on_field_changed()

    @staticmethod
    def _spin(lo, hi, value, suffix="", step=1) -> QSpinBox:
        w = QSpinBox()
        w.setRange(lo, hi)
        w.setSingleStep(step)
        w.setValue(value)
        w.setSuffix(suffix)
        w.setKeyboardTracking(False)  # re-featurise when typing is done, not on each digit
        return w

    def config(self) -> FeatureConfig:
        """The form's FeatureConfig; raises ConfigError on an impossible combination."""
        return FeatureConfig(
            kind=self.kind.currentData(),
            sample_rate=self.sample_rate.value(),
            duration=round(self.duration.value(), 3),
            trim_silence=self.trim.isChecked(),
            n_mfcc=self.n_mfcc.value(),
            n_fft=self.n_fft.value(),
            hop_length=self.hop.value(),
            n_mels=self.n_mels.value(),
            normalise=self.normalise.currentData(),
        )

    def _on_field_changed(self, *_args) -> None:
        self.n_mfcc.setEnabled(self.kind.currentData() == "mfcc")
        try:
            cfg = self.config()
        except ConfigError as exc:
            self.shape_label.setText(f"<span style='color:#a33'>{exc}</span>")
            return
        f, t = cfg.shape()
        self.shape_label.setText(f"each clip becomes <b>{f} x {t}</b> (features x frames)")
        self.configChanged.emit()

    def set_running(self, running: bool) -> None:
        self.compute.setEnabled(not running)
        self.cancel.setEnabled(running)
        for w in (self.kind, self.sample_rate, self.duration, self.n_mfcc, self.n_mels):
            w.setEnabled(
                not running and (w is not self.n_mfcc or self.kind.currentData() == "mfcc")
            )
        for w in (self.n_fft, self.hop, self.normalise, self.trim):
            w.setEnabled(not running)

    # ----- persistence
    def save_state(self, s) -> None:
        for key, value in self.config().to_dict().items():
            s.setValue(f"features/{key}", "" if value is None else value)

    def restore_state(self, s) -> None:
        d = FeatureConfig()
        self.blockSignals(True)
        try:
            self.kind.setCurrentIndex(
                max(0, self.kind.findData(read_value(s, "features/kind", d.kind)))
            )
            self.sample_rate.setValue(read_value(s, "features/sample_rate", d.sample_rate, int))
            self.duration.setValue(read_value(s, "features/duration", d.duration, float))
            self.n_mfcc.setValue(read_value(s, "features/n_mfcc", d.n_mfcc, int))
            self.n_mels.setValue(read_value(s, "features/n_mels", d.n_mels, int))
            self.n_fft.setValue(read_value(s, "features/n_fft", d.n_fft, int))
            self.hop.setValue(read_value(s, "features/hop_length", d.hop_length, int))
            norm = read_value(s, "features/normalise", d.normalise)
            self.normalise.setCurrentIndex(max(0, self.normalise.findData(norm)))
            self.trim.setChecked(read_value(s, "features/trim_silence", False, bool))
        finally:
            self.blockSignals(False)
        self._on_field_changed()
