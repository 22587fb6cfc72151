"""The Sweep view of the Training tab: start, stop and continue an Optuna sweep, watch its trials.

The worker drives :func:`engine.train.sweep.sweep` (what ``snn-explorer sweep`` runs) with the
set-up pane's config as the base and a SPACE.toml; its events are buffered and redrawn at 30 Hz.
Double-clicking a trial opens its run folder in the Training tab; "Train with the best config"
puts ``DIR/best.toml`` into the set-up pane.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.panels.training_sweep_views import ImportanceView, ParallelView, ScatterView, TrialTable
from app.workers import EventBuffer, PanelJobs
from engine.errors import SnnError
from engine.train.config import RunConfig, load_config
from engine.train.sweep import sweep
from engine.train.sweep_events import (
    SweepFinished,
    SweepStarted,
    TrialEpoch,
    TrialFinished,
    TrialStarted,
)
from engine.train.sweep_space import load_space
from engine.train.sweep_study import (
    BEST_FILE,
    SPEC_FILE,
    SweepSpec,
    TrialRow,
    asked_trials,
    read_spec,
    read_sweep,
)

log = logging.getLogger(__name__)


class SweepPanel(QWidget):
    """Signals
    -------
    openRunRequested(str)
        Show this trial's run folder in the Training tab.
    configRequested(object)
        Put this RunConfig (the best trial's) into the set-up pane.
    """

    openRunRequested = Signal(str)
    configRequested = Signal(object)

    def __init__(self, base_config: Callable[[], RunConfig], parent=None):
        super().__init__(parent)
        self.base_config = base_config
        self.space_file = QLineEdit()
        self.space_file.setPlaceholderText("SPACE.toml: parameters and their ranges")
        self.out = QLineEdit()
        self.out.setPlaceholderText("sweep folder (DIR/trial-NNNN, DIR/study.db)")
        self.trials = QSpinBox()
        self.trials.setRange(1, 10_000)
        self.trials.setValue(20)
        self.jobs_box = QSpinBox()
        self.jobs_box.setRange(1, 64)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.open_button = QPushButton("Open...")
        self.best_button = QPushButton("Train with the best config")
        self.start_button.setToolTip("Sweep the set-up pane's config over SPACE.toml")
        self.stop_button.setToolTip("Stop the running trial with a checkpoint; Resume continues")
        self.resume_button.setToolTip("Continue the sweep in the folder (also one the CLI made)")
        self.best_button.setToolTip("Put DIR/best.toml into the set-up pane")
        browse_space = QPushButton("...")
        browse_out = QPushButton("...")
        form = QGridLayout()
        form.addWidget(QLabel("Space"), 0, 0)
        form.addWidget(self.space_file, 0, 1)
        form.addWidget(browse_space, 0, 2)
        form.addWidget(QLabel("Trials"), 0, 3)
        form.addWidget(self.trials, 0, 4)
        form.addWidget(QLabel("Folder"), 1, 0)
        form.addWidget(self.out, 1, 1)
        form.addWidget(browse_out, 1, 2)
        form.addWidget(QLabel("Jobs"), 1, 3)
        form.addWidget(self.jobs_box, 1, 4)
        form.setColumnStretch(1, 1)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button, self.open_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.best_button)
        self.status = QLabel("no sweep")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #a33;")
        self.message.setVisible(False)

        self.table = TrialTable()
        self.scatter = ScatterView()
        self.parallel = ParallelView()
        self.importance = ImportanceView()
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.table)
        top.addWidget(self.importance)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        top.setSizes([600, 300])
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.scatter)
        bottom.addWidget(self.parallel)
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(top)
        body.addWidget(bottom)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.message)
        layout.addWidget(body, 1)

        self.spec: SweepSpec | None = None
        self.n_trials = 0
        self.rows: dict[int, TrialRow] = {}
        self.started_at: dict[int, float] = {}
        self.summary = None
        self.jobs = PanelJobs(self)
        self.buffer: EventBuffer | None = None
        self.start_button.clicked.connect(self._on_start_clicked)
        self.stop_button.clicked.connect(self.request_stop)
        self.resume_button.clicked.connect(self._on_resume_clicked)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.best_button.clicked.connect(self._on_best_clicked)
        browse_space.clicked.connect(self._on_browse_space_clicked)
        browse_out.clicked.connect(self._on_browse_out_clicked)
        self.table.runActivated.connect(self.openRunRequested)
        self._sync_buttons()

    # ----- running
    def is_running(self) -> bool:
        return self.jobs.busy("sweep")

    def start(
        self, spec: SweepSpec | None = None, n_trials: int | None = None, jobs=None, data=None
    ):
        """Start (or continue) ``spec`` (default: the form) until ``n_trials`` count."""
        if self.is_running():
            return None
        try:
            spec = spec or self._spec_from_form()
        except SnnError as exc:
            self._show_error(str(exc))
            return None
        self._show_error("")
        self.spec, self.summary = spec, None
        self.n_trials = int(n_trials or self.trials.value())
        jobs = int(jobs or self.jobs_box.value())
        self.out.setText(spec.out)
        self.rows, self.started_at = {}, {}
        self._load_rows(spec.out)
        self.buffer = EventBuffer(self._on_buffer_events, 33, self)
        n = self.n_trials
        handle = self.jobs.start(
            "sweep",
            lambda stop: sweep(spec, n, jobs=jobs, stop=stop, data=data),
            on_progress=self.buffer.push,
            on_failed=self._on_worker_failed,
            on_done=self._on_worker_done,
            background=True,
        )
        self.status.setText(f"sweeping {n} trials in {spec.out}")
        self._sync_buttons()
        return handle

    def request_stop(self) -> None:
        handle = self.jobs.current("sweep")
        if handle is not None and not handle.stop_event.is_set():
            self.jobs.stop("sweep")
            self.status.setText("stopping: the running trial keeps a checkpoint")
            self._sync_buttons()

    def open_sweep(self, out: str) -> None:
        """Show the sweep in folder ``out`` (finished, stopped, or made by the CLI)."""
        if self.is_running():
            self._show_error("stop the running sweep before opening another")
            return
        try:
            self.spec = read_spec(out)
            self.summary = read_sweep(out)
        except SnnError as exc:
            self._show_error(str(exc))
            return
        self._show_error("")
        self.out.setText(str(out))
        self.trials.setValue(asked_trials(out) or max(1, self.summary.n_counted))
        self.rows = {r.number: r for r in self.summary.rows}
        self.status.setText(self._summary_text(self.summary))
        self._redraw()
        self._sync_buttons()

    def shutdown(self) -> None:
        if not self.jobs.stop_all(60000):  # the running trial keeps a checkpoint
            log.warning("the sweep did not stop within 60 s")
        if self.buffer is not None:
            self.buffer.stop()
            self.buffer = None

    def _spec_from_form(self) -> SweepSpec:
        from engine.errors import ConfigError

        out = self.out.text().strip()
        if not out:
            raise ConfigError("sweep folder: choose a folder for the trials")
        if not self.space_file.text().strip():
            raise ConfigError("space: choose a SPACE.toml naming the parameters to search")
        base = self.base_config()
        return SweepSpec(base, load_space(self.space_file.text().strip(), base), out)

    def _load_rows(self, out: str) -> None:
        if (Path(out) / SPEC_FILE).is_file():
            try:
                self.rows = {r.number: r for r in read_sweep(out).rows}
            except SnnError:
                self.rows = {}
        self._redraw()

    # ----- events
    def _on_buffer_events(self, events: list) -> None:
        for ev in events:
            if isinstance(ev, SweepStarted):
                self.status.setText(
                    f"sweeping {ev.n_trials} trials in {ev.out} ({ev.done} done, {ev.jobs} jobs)"
                )
            elif isinstance(ev, TrialStarted):
                self.started_at[ev.number] = time.monotonic()
                self.rows[ev.number] = TrialRow(
                    ev.number, "RUNNING", dict(ev.params), None, 0.0, ev.run_dir, 0
                )
                self.rows = {k: r for k, r in self.rows.items() if r.state != "WAITING"}
            elif isinstance(ev, TrialEpoch) and ev.number in self.rows:
                r = self.rows[ev.number]
                best = max(v for v in (r.value, ev.val_acc) if v is not None)
                self.rows[ev.number] = dataclasses.replace(r, value=best, epochs=ev.epoch)
            elif isinstance(ev, TrialFinished):
                self.started_at.pop(ev.number, None)
                self.rows[ev.number] = TrialRow(
                    ev.number, ev.state, dict(ev.params), ev.value, ev.seconds, ev.run_dir, 0
                )
            elif isinstance(ev, SweepFinished):
                self.summary = ev.summary
                self.rows = {r.number: r for r in ev.summary.rows}
                self.status.setText(f"{ev.status}: " + self._summary_text(ev.summary))
        self._redraw()

    def _redraw(self) -> None:
        now = time.monotonic()
        rows = [
            dataclasses.replace(r, seconds=now - self.started_at[n]) if n in self.started_at else r
            for n, r in sorted(self.rows.items())
        ]
        space = self.spec.space if self.spec else ()
        self.table.set_rows(rows, tuple(p.key for p in space))
        self.scatter.set_rows(rows, space)
        self.parallel.set_rows(rows, space)
        if self.summary is not None:
            self.importance.set_importances(self.summary.importances, self.summary.importance_note)
        else:
            self.importance.set_importances({}, "importances when the sweep ends")

    @staticmethod
    def _summary_text(s) -> str:
        best = (
            f"; best trial {s.best_number} at {100 * s.best_value:.1f}% val acc"
            if s.best_number is not None
            else ""
        )
        return f"{s.n_counted} trials complete or pruned in {s.out}{best}"

    def _on_worker_failed(self, message: str) -> None:
        self._show_error(message)

    def _on_worker_done(self) -> None:
        if self.buffer is not None:
            self.buffer.flush()
            self.buffer.stop()
            self.buffer = None
        self._sync_buttons()

    # ----- buttons
    def _on_start_clicked(self) -> None:
        self.start()

    def _on_resume_clicked(self) -> None:
        out = self.out.text().strip()
        try:
            spec = read_spec(out)
        except SnnError as exc:
            self._show_error(str(exc))
            return
        self.start(spec)

    def _on_open_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a sweep folder", self.out.text())
        if path:
            self.open_sweep(path)

    def _on_browse_space_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Search space", "", "TOML (*.toml)")
        if path:
            self.space_file.setText(path)

    def _on_browse_out_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Sweep folder", self.out.text())
        if path:
            self.out.setText(path)

    def _on_best_clicked(self) -> None:
        path = Path(self.out.text().strip()) / BEST_FILE
        try:
            cfg = load_config(path)
        except SnnError as exc:
            self._show_error(str(exc))
            return
        self._show_error("")
        self.configRequested.emit(cfg)

    def _sync_buttons(self) -> None:
        handle = self.jobs.current("sweep")
        running = handle is not None
        stopping = running and handle.stop_event.is_set()
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.open_button.setEnabled(not running)
        self.stop_button.setEnabled(running and not stopping)
        self.best_button.setEnabled(bool(self.out.text().strip()))

    def _show_error(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
