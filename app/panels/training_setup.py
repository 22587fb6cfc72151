"""Set-up pane of the Training tab: every RunConfig field a person usually changes.

The pane reads and writes the same TOML the ``train`` command reads (``engine.train.config``). Fields
without a widget (model options, schedule...) come from the last loaded file and are kept.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.panels.training_defaults import SetupDefaults
from app.widgets import combo
from app.workers import PanelJobs
from engine.audio.features import FeatureConfig
from engine.models.registry import MODELS, SPIKING_MODELS
from engine.neuro.surrogate import SURROGATES
from engine.train.config import CLASS_WEIGHTING, ENCODERS, LOSSES, OPTIMISERS, RunConfig

MODEL_TITLES = {
    "fc_snn": "FC SNN (spiking)",
    "csnn": "CSNN (spiking, report Fig. 24)",
    "csnn_avg": "CSNN, average pooling (spiking)",
    "cnn": "CNN (the CSNN's ReLU twin)",
    "scnn_gap": "Deep SCNN, global pooling (spiking)",
    "cnn_gap": "Deep CNN, global pooling (SCNN's twin)",
    "srnn": "Recurrent ALIF SNN, per frame (spiking)",
    "rnn": "RNN (the recurrent SNN's twin)",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "efficientnet_b0": "EfficientNet-B0",
    "vgg16": "VGG-16",
    "densenet121": "DenseNet-121",
    "mobilenet_v2": "MobileNetV2",
}
LOSS_TITLES = {
    "ce_count": "cross-entropy on spike counts",
    "mse_count": "MSE on spike counts",
    "ce_mem": "cross-entropy on membrane",
}
WEIGHTING_TITLES = {
    "none": "none",
    "weights": "class weights in the loss",
    "balanced_sampling": "balanced sampling",
}


def _spin(lo, hi, value, step=1, decimals=None, suffix=""):
    box = QSpinBox() if decimals is None else QDoubleSpinBox()
    if decimals is not None:
        box.setDecimals(decimals)
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(value)
    if suffix:
        box.setSuffix(suffix)
    return box


def _set(box: QComboBox, key) -> None:
    i = box.findData(key)
    if i >= 0:
        box.setCurrentIndex(i)


class SetupPane(QWidget):
    """Data, features, model, spiking options, training and augmentation settings.

    Signals
    -------
    useDatasetRequested()
        "Use the Data tab's set" was pressed (the panel fills in ``context.dataset_spec``).
    loadRequested(), saveRequested()
        The config file buttons were pressed (the panel shows the dialogs).
    featuresProposed(str)
        The recipe for the data set was filled in (the proposal's description): after a data
        change or "From data" (``app.panels.training_defaults``).
    """

    useDatasetRequested = Signal()
    loadRequested = Signal()
    saveRequested = Signal()
    featuresProposed = Signal(str)  # the proposal's one-line description, once filled in

    def __init__(self, devices: list, parent=None, jobs: PanelJobs | None = None):
        super().__init__(parent)
        self.jobs = jobs if jobs is not None else PanelJobs(self)  # the panel's, to stop them
        self._base = RunConfig()
        d, f = RunConfig(), FeatureConfig()
        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)

        box = QGroupBox("Data")
        form = QFormLayout(box)
        self.data = QLineEdit()
        self.data.setPlaceholderText("fsdd:PATH, folder:PATH, csv:PATH, mnist:PATH...")
        form.addRow("Data set", self.data)
        row = QHBoxLayout()
        self.use_dataset = QPushButton("Use the Data tab's set")
        self.browse_data = QPushButton("Folder...")
        row.addWidget(self.use_dataset)
        row.addWidget(self.browse_data)
        form.addRow("", row)
        self.limit = _spin(0, 10**7, 0, 100)
        self.limit.setSpecialValueText("all")
        self.limit.setToolTip("train on a seeded random slice of about this many examples")
        form.addRow("Examples", self.limit)
        self.feature_kind = combo({"mfcc": "MFCC", "logmel": "log-mel"})
        self.propose = QPushButton("From data")
        self.propose.setToolTip(
            "Fill the feature settings in from the clips' lengths and sample rates "
            "(the command line does this when a run gives no [features])"
        )
        row = QHBoxLayout()
        row.addWidget(self.feature_kind, 1)
        row.addWidget(self.propose)
        form.addRow("Features", row)
        self.n_mfcc = _spin(1, 128, f.n_mfcc)
        self.n_mels = _spin(1, 256, f.n_mels)
        self.sample_rate = _spin(1000, 96000, f.sample_rate, 1000, suffix=" Hz")
        self.duration = _spin(0.05, 60.0, f.duration, 0.1, 2, " s")
        self.hop = _spin(1, 8192, f.hop_length, 16)
        row = QHBoxLayout()
        row.addWidget(self.n_mfcc)
        row.addWidget(self.n_mels)
        form.addRow("MFCCs / mels", row)
        row = QHBoxLayout()
        row.addWidget(self.sample_rate)
        row.addWidget(self.duration)
        form.addRow("Rate / length", row)
        form.addRow("Hop (samples)", self.hop)
        self.chosen = QLabel()  # what the recipe chose for this data, and why
        self.chosen.setWordWrap(True)
        self.chosen.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chosen.setVisible(False)
        form.addRow(self.chosen)
        root.addWidget(box)

        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.model = combo({m: MODEL_TITLES.get(m, m) for m in MODELS})
        form.addRow("Model", self.model)
        self.twin = QCheckBox("Train its non-spiking twin")
        self.twin.setToolTip("The same layers with ReLU/tanh for the neurons, all else equal")
        form.addRow("", self.twin)
        self.steps = _spin(1, 1000, d.steps)
        form.addRow("Time steps", self.steps)
        self.encoder = combo({e: e for e in ENCODERS})
        form.addRow("Encoder", self.encoder)
        self.surrogate = combo({s: s.replace("_", " ") for s in SURROGATES})
        form.addRow("Surrogate", self.surrogate)
        self.beta = _spin(0.0, 1.0, d.beta, 0.01, 3)
        form.addRow("Beta (decay)", self.beta)
        self.loss = combo({k: LOSS_TITLES.get(k, k) for k in LOSSES})
        form.addRow("Loss", self.loss)
        root.addWidget(box)

        box = QGroupBox("Training")
        form = QFormLayout(box)
        self.optimiser = combo({o: o for o in OPTIMISERS})
        form.addRow("Optimiser", self.optimiser)
        self.lr = _spin(1e-6, 10.0, d.lr, 5e-4, 6)
        form.addRow("Learning rate", self.lr)
        self.batch = _spin(2, 8192, d.batch, 8)
        form.addRow("Batch size", self.batch)
        self.epochs = _spin(1, 10000, d.epochs)
        form.addRow("Epochs", self.epochs)
        self.patience = _spin(0, 1000, d.patience, suffix=" flat epochs")
        self.patience.setSpecialValueText("off")
        self.patience.setToolTip(
            "Stop after this many epochs with neither a better validation accuracy nor a lower "
            "validation loss"
        )
        form.addRow("Early stop after", self.patience)
        self.weighting = combo({k: WEIGHTING_TITLES[k] for k in CLASS_WEIGHTING})
        form.addRow("Class weighting", self.weighting)
        self.device = QComboBox()
        self.device.addItem("auto (GPU when present)", "auto")
        for dev in devices:
            self.device.addItem(dev.label, dev.name)
        form.addRow("Device", self.device)
        self.seed = _spin(0, 2**31 - 1, d.seed)
        form.addRow("Seed", self.seed)
        # not a run setting either: how the run is executed (app.panels.training_processes)
        self.nproc = _spin(1, 64, 1)
        self.nproc.setToolTip(
            "1: train inside the app. N > 1: start N processes through torchrun "
            "(snn-explorer train --nproc N; one per GPU on CUDA machines, gloo processes on "
            "the CPU) and follow their run folder; the batch size is the global batch"
        )
        form.addRow("Processes / GPUs", self.nproc)
        # not a run setting (it does not change the model): a way of recording the run
        self.tensorboard = QCheckBox("TensorBoard files (run folder/tb)")
        self.tensorboard.setToolTip(
            "Also write TensorBoard event files into the run folder's tb/ "
            "(needs the tensorboard package: pip install 'snn-explorer[tensorboard]')"
        )
        form.addRow("Logging", self.tensorboard)
        root.addWidget(box)

        box = QGroupBox("Augmentation (training split only)")
        form = QFormLayout(box)
        self.copies = _spin(0, 20, 0)
        form.addRow("Augmented copies", self.copies)
        self.time_shift = _spin(0.0, 5.0, 0.0, 0.05, 2, " s")
        form.addRow("Time shift", self.time_shift)
        self.noise = QCheckBox("Noise at SNR")
        self.noise_snr = _spin(-20.0, 60.0, 20.0, 1.0, 1, " dB")
        row = QHBoxLayout()
        row.addWidget(self.noise)
        row.addWidget(self.noise_snr)
        form.addRow("", row)
        self.time_mask = _spin(0, 500, 0)
        self.freq_mask = _spin(0, 128, 0)
        row = QHBoxLayout()
        row.addWidget(self.time_mask)
        row.addWidget(self.freq_mask)
        form.addRow("SpecAugment t / f", row)
        root.addWidget(box)

        row = QHBoxLayout()
        self.load_button = QPushButton("Load config...")
        self.save_button = QPushButton("Save config...")
        row.addWidget(self.load_button)
        row.addWidget(self.save_button)
        root.addLayout(row)
        root.addStretch(1)

        self.use_dataset.clicked.connect(self.useDatasetRequested)
        self.load_button.clicked.connect(self.loadRequested)
        self.save_button.clicked.connect(self.saveRequested)
        self.browse_data.clicked.connect(self._on_browse_data_clicked)
        self.model.currentIndexChanged.connect(self._on_model_changed)
        self.defaults = SetupDefaults(self)  # the recipe for the chosen data; "From data"
        self.set_config(RunConfig(), keep=False)

    # ----- handlers
    def _on_browse_data_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Data set folder")
        if path:
            self.data.setText(f"folder:{path}")

    def _on_model_changed(self, _index: int) -> None:
        spiking = self.model.currentData() in SPIKING_MODELS
        for w in (self.steps, self.encoder, self.surrogate, self.beta):
            w.setEnabled(spiking)

    # ----- config <-> form
    def config(self) -> RunConfig:
        """The form as a RunConfig (ConfigError on a bad combination)."""
        feats = dict(self._base.features)
        feats.update(
            kind=self.feature_kind.currentData(),
            n_mfcc=self.n_mfcc.value(),
            n_mels=self.n_mels.value(),
            sample_rate=self.sample_rate.value(),
            duration=round(self.duration.value(), 4),
            hop_length=self.hop.value(),
        )
        aug = dict(self._base.augment)
        aug.update(
            copies=self.copies.value(),
            time_shift_s=round(self.time_shift.value(), 4),
            noise_snr_db=round(self.noise_snr.value(), 2) if self.noise.isChecked() else None,
            spec_time_mask=self.time_mask.value(),
            spec_freq_mask=self.freq_mask.value(),
        )
        # TOML has no null and "all off" is the same as no table: keep only what is on
        aug = {k: v for k, v in aug.items() if v not in (None, 0, 0.0)}
        return RunConfig.from_dict(
            {
                **self._base.to_dict(),
                "data": self.data.text().strip(),
                "limit": self.limit.value(),
                "features": feats,
                "augment": aug,
                "model": self.model.currentData(),
                "steps": self.steps.value(),
                "encoder": self.encoder.currentData(),
                "surrogate": self.surrogate.currentData(),
                "beta": round(self.beta.value(), 6),
                "loss": self.loss.currentData(),
                "optimiser": self.optimiser.currentData(),
                "lr": float(self.lr.value()),
                "batch": self.batch.value(),
                "epochs": self.epochs.value(),
                "patience": self.patience.value(),
                "class_weighting": self.weighting.currentData(),
                "device": self.device.currentData(),
                "seed": self.seed.value(),
            },
            source="Training tab",
        )

    def set_config(self, cfg: RunConfig, keep: bool = True) -> None:
        """Show ``cfg`` in the form; fields without a widget are kept for ``config()``.

        ``keep``: a loaded config (file, run, sweep trial) whose settings a later data change
        does not replace; "From data" does (``app.panels.training_defaults``).
        """
        with self.defaults.filling(keep):
            self._show(cfg)

    def _show(self, cfg: RunConfig) -> None:
        self._base = cfg
        f = FeatureConfig.from_dict(
            {k: v for k, v in cfg.features.items() if k in FeatureConfig.__dataclass_fields__}
        )
        self.data.setText(cfg.data)
        self.data.setCursorPosition(0)  # the kind and the start of the path, not its end
        self.data.setToolTip(cfg.data)
        self.limit.setValue(cfg.limit)
        _set(self.feature_kind, f.kind if f.kind != "image" else "mfcc")
        self.n_mfcc.setValue(f.n_mfcc)
        self.n_mels.setValue(f.n_mels)
        self.sample_rate.setValue(f.sample_rate)
        self.duration.setValue(f.duration)
        self.hop.setValue(f.hop_length)
        _set(self.model, cfg.model)
        self.steps.setValue(cfg.steps)
        _set(self.encoder, cfg.encoder)
        _set(self.surrogate, cfg.surrogate)
        self.beta.setValue(cfg.beta)
        _set(self.loss, cfg.loss)
        _set(self.optimiser, cfg.optimiser)
        self.lr.setValue(cfg.lr)
        self.batch.setValue(cfg.batch)
        self.epochs.setValue(cfg.epochs)
        self.patience.setValue(cfg.patience)
        _set(self.weighting, cfg.class_weighting)
        if self.device.findData(cfg.device) < 0:
            self.device.addItem(cfg.device, cfg.device)  # e.g. cuda:1 saved on another machine
        _set(self.device, cfg.device)
        self.seed.setValue(cfg.seed)
        a = cfg.augment
        self.copies.setValue(int(a.get("copies", 0) or 0))
        self.time_shift.setValue(float(a.get("time_shift_s", 0.0) or 0.0))
        self.noise.setChecked(a.get("noise_snr_db") is not None)
        if a.get("noise_snr_db") is not None:
            self.noise_snr.setValue(float(a["noise_snr_db"]))
        self.time_mask.setValue(int(a.get("spec_time_mask", 0) or 0))
        self.freq_mask.setValue(int(a.get("spec_freq_mask", 0) or 0))
        self._on_model_changed(0)


class SetupColumn(QScrollArea):
    """The set-up pane in a vertical scroll area as wide as the pane's minimum width plus the
    scroll bar (``width`` at least), so no field, button or spin-box arrow is cut off; it follows
    the pane when its minimum width changes (a longer text, another style)."""

    def __init__(self, pane: QWidget, width: int = 0, parent=None):
        super().__init__(parent)
        self._least = width
        self.setWidget(pane)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        pane.installEventFilter(self)
        self._fit()

    def eventFilter(self, watched, event) -> bool:
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._fit()
        return super().eventFilter(watched, event)

    def _fit(self) -> None:
        bar = self.verticalScrollBar().sizeHint().width()
        need = self.widget().minimumSizeHint().width() + bar + 2 * self.frameWidth()
        width = max(self._least, need)
        if width != self.minimumWidth() or width != self.maximumWidth():
            self.setFixedWidth(width)
