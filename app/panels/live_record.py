"""The Live tab's Record sub-tab: make a folder data set (one sub-folder per class) from the mic.

Recording and playback are engine generators (``engine.live.recording.record_clips``, ``play_clip``)
driven on a worker thread; the counts and clip list are re-read from the folder after each
change, so they always show what a training run would find.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.plotting import color, make_plot
from app.settings import read_value
from app.widgets import LevelMeter
from app.workers import EventBuffer, PanelJobs
from engine.errors import SnnError
from engine.live.recording import (
    BACKGROUND,
    ClipSaved,
    PlaybackProgress,
    RecordLevel,
    RecordWaiting,
    add_background_from_file,
    class_counts,
    delete_clip,
    list_clips,
    play_clip,
    record_clips,
    safe_label,
)

log = logging.getLogger(__name__)


def default_folder() -> str:
    return str(Path.home() / "snn-explorer-sounds")


class RecordView(QWidget):
    """Folder, class name, clip length and count; record, play back, delete; counts per class."""

    def __init__(self, context, device_index, parent=None):
        super().__init__(parent)
        self.context = context
        self._device_index = device_index  # callable: the Live tab's chosen capture device
        self.jobs = PanelJobs(self)  # "record": recording or playing a clip
        self.buffer = EventBuffer(self._on_buffer_events, 40, self)
        self.saved: list[str] = []  # paths recorded in this session, newest last
        self.error = ""
        self._samples: list[np.ndarray] = []
        self._rate = 16000

        setup = QGroupBox("Data set")
        self.folder = QLineEdit(default_folder())
        self.choose = QPushButton("Choose...")
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(self.choose)
        self.label = QComboBox()
        self.label.setEditable(True)
        self.label.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.label.lineEdit().setPlaceholderText("type a class name, e.g. yes")
        self.seconds = _spin(0.2, 10.0, 1.0, 0.1, " s")
        self.count = QSpinBox()
        self.count.setRange(1, 200)
        self.count.setValue(5)
        self.pause = _spin(0.0, 5.0, 0.5, 0.1, " s")
        form = QFormLayout(setup)
        form.addRow("Folder", row)
        form.addRow("Class", self.label)
        form.addRow("Clip length", self.seconds)
        form.addRow("Clips", self.count)
        form.addRow("Pause between", self.pause)

        self.record = QPushButton("Record")
        self.background = QPushButton("Record background noise")
        self.background.setToolTip(
            f"One continuous take of (clips x clip length) cut into clips of the class "
            f"'{BACKGROUND}': the sound of the room when nobody speaks"
        )
        self.background_file = QPushButton("Background from a file...")
        self.stop_button = QPushButton("Stop")
        self.train = QPushButton("Train on this folder")
        self.train.setToolTip("Make this folder the Training tab's data set (folder:...)")
        buttons = QGridLayout()
        buttons.addWidget(self.record, 0, 0)
        buttons.addWidget(self.stop_button, 0, 1)
        buttons.addWidget(self.background, 1, 0)
        buttons.addWidget(self.background_file, 1, 1)
        buttons.addWidget(self.train, 2, 0, 1, 2)
        self.progress = QLabel("")
        self.progress.setWordWrap(True)
        self.level = LevelMeter()

        self.counts = QTableWidget(0, 2)
        self.counts.setHorizontalHeaderLabels(["class", "clips"])
        self.counts.horizontalHeader().setStretchLastSection(True)
        self.counts.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.counts.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.counts.verticalHeader().setVisible(False)
        self.clips = QListWidget()
        self.clips.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.play = QPushButton("Play")
        self.delete = QPushButton("Delete")
        clip_buttons = QHBoxLayout()
        clip_buttons.addWidget(self.play)
        clip_buttons.addWidget(self.delete)
        self.clip_plot = make_plot("Last clip", "time (s)", "amplitude")
        self.clip_curve = self.clip_plot.plot(pen=color(0), name="clip")
        self.clip_curve.setDownsampling(auto=True, method="peak")
        for axis in ("left", "bottom"):
            self.clip_plot.getPlotItem().getAxis(axis).enableAutoSIPrefix(False)

        left = QVBoxLayout()
        left.addWidget(setup)
        left.addLayout(buttons)
        left.addWidget(self.level)
        left.addWidget(self.progress)
        left.addWidget(self.clip_plot, 1)
        right = QVBoxLayout()
        right.addWidget(QLabel("Clips per class"))
        right.addWidget(self.counts, 1)
        right.addWidget(QLabel("Clips of the selected class"))
        right.addWidget(self.clips, 2)
        right.addLayout(clip_buttons)
        lay = QHBoxLayout(self)
        lay.addLayout(left, 3)
        lay.addLayout(right, 2)

        self.choose.clicked.connect(self._on_choose_clicked)
        self.folder.editingFinished.connect(self.refresh)
        self.record.clicked.connect(self._on_record_clicked)
        self.background.clicked.connect(self._on_background_clicked)
        self.background_file.clicked.connect(self._on_background_file_clicked)
        self.stop_button.clicked.connect(self.stop)
        self.train.clicked.connect(self._on_train_clicked)
        self.play.clicked.connect(self._on_play_clicked)
        self.delete.clicked.connect(self._on_delete_clicked)
        self.counts.itemSelectionChanged.connect(self._on_counts_selection_changed)
        self.label.currentTextChanged.connect(self._on_label_text_changed)
        self.refresh()

    # ----- state
    def out_dir(self) -> str:
        return self.folder.text().strip() or default_folder()

    def class_name(self) -> str:
        return self.label.currentText().strip()

    def busy(self) -> bool:
        return self.jobs.busy("record")

    def refresh(self) -> None:
        """Re-read counts and the clip list from the folder."""
        counts = class_counts(self.out_dir())
        self.counts.setRowCount(len(counts))
        for row, (name, n) in enumerate(counts.items()):
            self.counts.setItem(row, 0, QTableWidgetItem(name))
            count = QTableWidgetItem(str(n))
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.counts.setItem(row, 1, count)
        text = self.label.currentText()
        self.label.blockSignals(True)
        self.label.clear()
        self.label.addItems(list(counts))
        self.label.setEditText(text)
        self.label.blockSignals(False)
        self._fill_clips()
        self._sync()

    def _fill_clips(self) -> None:
        chosen = {i.data(Qt.ItemDataRole.UserRole) for i in self.clips.selectedItems()}
        self.clips.clear()
        try:
            paths = list_clips(self.out_dir(), self.class_name()) if self.class_name() else []
        except SnnError:
            paths = []
        for p in paths:
            item = QListWidgetItem(p.name)
            item.setData(Qt.ItemDataRole.UserRole, str(p))
            self.clips.addItem(item)
            item.setSelected(str(p) in chosen)

    def _sync(self) -> None:
        busy = self.busy()
        for w in (self.record, self.background, self.background_file, self.delete, self.play):
            w.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.train.setEnabled(not busy and len(class_counts(self.out_dir())) >= 2)

    # ----- jobs
    def start_recording(self, background: bool = False) -> bool:
        if self.busy():
            return False
        label = BACKGROUND if background else self.class_name()
        try:
            safe_label(label)
        except SnnError as exc:
            self._show_error(str(exc))
            return False
        out, seconds, count = self.out_dir(), self.seconds.value(), self.count.value()
        pause, device = (0.0 if background else self.pause.value()), self._device_index()
        self.error = ""
        self.progress.setText("Starting the microphone...")
        self._start(
            lambda stop: record_clips(
                out,
                label,
                seconds,
                count,
                device=device,
                pause_s=pause,
                split=background,
                stop=stop,
            )
        )
        return True

    def play_path(self, path: str) -> bool:
        if self.busy():
            return False
        self.error = ""
        self._start(lambda stop: play_clip(path, stop=stop))
        return True

    def stop(self) -> None:
        self.jobs.stop("record")

    def _start(self, factory):
        handle = self.jobs.start(
            "record",
            factory,
            on_progress=self.buffer.push,
            on_finished=self._on_worker_finished,
            on_failed=self._on_worker_failed,
            on_done=self._sync,  # buttons follow the thread, which ends after the job
        )
        self._sync()
        return handle

    def _on_buffer_events(self, events: list) -> None:
        for ev in events:
            if isinstance(ev, RecordLevel):
                self.level.show_peak(ev.peak)
                self._samples.append(ev.samples)
                self._rate = ev.sample_rate
                what = "background take" if ev.seconds > self.seconds.value() + 1e-9 else "clip"
                self.progress.setText(
                    f"Recording {what} {ev.clip + 1}: {ev.elapsed_s:.1f} / {ev.seconds:g} s"
                )
            elif isinstance(ev, RecordWaiting):
                self._samples = []
                self.progress.setText(f"Get ready: clip {ev.clip + 1} in {ev.remaining_s:.1f} s")
            elif isinstance(ev, ClipSaved):
                self.saved.append(ev.path)
                self.progress.setText(f"Saved {Path(ev.path).name} ({ev.seconds:g} s)")
                self._samples = []
                self._show_clip(ev.path)
                self.refresh()
            elif isinstance(ev, PlaybackProgress):
                self.progress.setText(f"Playing {ev.position_s:.1f} / {ev.duration_s:.1f} s")

    def _show_clip(self, path: str) -> None:
        from engine.audio.load import load_audio

        try:
            y, sr = load_audio(path)
        except SnnError:
            return
        self.clip_curve.setData(np.arange(len(y)) / sr, y)

    def _on_worker_finished(self, result) -> None:
        self.buffer.flush()
        if result is not None and hasattr(result, "paths"):
            self.progress.setText(
                f"{len(result.paths)} clip(s) saved to {Path(self.out_dir()) / result.label}"
                + (" (stopped)" if result.stopped else "")
            )
        self.refresh()

    def _on_worker_failed(self, message: str) -> None:
        self.buffer.flush()
        self._show_error(message)
        self.refresh()

    def _show_error(self, message: str) -> None:
        self.error = message
        self.progress.setText(message)
        self.context.status(message)

    # ----- handlers
    def _on_record_clicked(self) -> None:
        self.start_recording(background=False)

    def _on_background_clicked(self) -> None:
        self.start_recording(background=True)

    def _on_background_file_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A long recording of background noise")
        if path:
            self.add_background_file(path)

    def add_background_file(self, path: str) -> None:
        try:
            paths = add_background_from_file(self.out_dir(), path, self.seconds.value())
        except SnnError as exc:
            self._show_error(str(exc))
            return
        self.progress.setText(f"Cut {Path(path).name} into {len(paths)} '{BACKGROUND}' clips")
        self.refresh()

    def _on_choose_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Data set folder", self.out_dir())
        if path:
            self.folder.setText(path)
            self.refresh()

    def _on_train_clicked(self) -> None:
        spec = f"folder:{os.path.abspath(self.out_dir())}"
        self.context.set_dataset(spec)
        self.context.status(f"The Training tab's data set is now {spec}")

    def _on_play_clicked(self) -> None:
        items = self.clips.selectedItems()
        if items:
            self.play_path(items[0].data(Qt.ItemDataRole.UserRole))

    def _on_delete_clicked(self) -> None:
        for item in self.clips.selectedItems():
            try:
                delete_clip(self.out_dir(), item.data(Qt.ItemDataRole.UserRole))
            except SnnError as exc:
                self._show_error(str(exc))
        self.refresh()

    def _on_counts_selection_changed(self) -> None:
        rows = self.counts.selectionModel().selectedRows()
        if rows:
            self.label.setEditText(self.counts.item(rows[0].row(), 0).text())

    def _on_label_text_changed(self, _text: str) -> None:
        self._fill_clips()

    # ----- persistence
    def save_state(self, s) -> None:
        s.setValue("record/folder", self.out_dir())
        s.setValue("record/label", self.class_name())
        s.setValue("record/seconds", self.seconds.value())
        s.setValue("record/count", self.count.value())
        s.setValue("record/pause", self.pause.value())

    def restore_state(self, s) -> None:
        self.folder.setText(read_value(s, "record/folder", default_folder(), str))
        self.seconds.setValue(read_value(s, "record/seconds", 1.0, float))
        self.count.setValue(read_value(s, "record/count", 5, int))
        self.pause.setValue(read_value(s, "record/pause", 0.5, float))
        self.refresh()
        self.label.setEditText(read_value(s, "record/label", "", str))

    def shutdown(self) -> None:
        if not self.jobs.stop_all():
            log.warning("the recording thread did not stop in time")
        self.buffer.stop()


def _spin(lo: float, hi: float, value: float, step: float, suffix: str) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setValue(value)
    w.setSingleStep(step)
    w.setDecimals(2)
    w.setSuffix(suffix)
    return w
