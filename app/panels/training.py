"""The Training tab: set up a run, train it off the UI thread with live views, compare runs.

The worker drives :func:`engine.train.recorded_run.train_recorded` (the same ``engine.train.loop.train``
the ``train`` command runs, plus traces and peak memory saved to the run folder); its events go
into a :class:`engine.train.history.RunHistory` through an ``EventBuffer`` that redraws the views
at 30 Hz. Stop keeps a checkpoint; Resume continues a run folder (also one made by the CLI).

Just over 400 lines: this module only wires the tab (start/stop/resume, redraw, settings); its
parts are already split out (setup form, views, traces, runs table, files/export, sweep).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.panels.training_files import TrainingFiles
from app.panels.training_processes import ProcessJob, start_process_job
from app.panels.training_runs import RunsPane
from app.panels.training_setup import SetupColumn, SetupPane
from app.panels.training_sweep import SweepPanel
from app.panels.training_traces import TracesView
from app.panels.training_views import NO_RUN, ConfusionView, CurvesView, progress_text
from app.settings import read_value
from app.workers import EventBuffer, PanelJobs, WorkerHandle
from engine.device import available_devices
from engine.errors import SnnError
from engine.train.config import RunConfig, load_config
from engine.train.history import RunHistory
from engine.train.recorded_run import train_recorded
from engine.train.run_folder import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    checkpoint_for_prediction,
    default_runs_dir,
    new_run_dir,
    read_run,
)

log = logging.getLogger(__name__)


class TrainingPanel(QWidget):
    """Set-up pane on the left; controls, progress and the views on the right.

    Signals
    -------
    runStarted(str)
        A run (new or resumed) started in this run folder.
    runEnded(str)
        The worker's thread ended (completed, stopped or failed); the run folder.
    """

    runStarted = Signal(str)
    runEnded = Signal(str)

    def __init__(self, context, parent=None):
        super().__init__(parent)
        self.context = context
        self.jobs = PanelJobs(self)  # "train", "export", and the setup pane's "propose"
        self.setup = SetupPane(available_devices(), jobs=self.jobs)
        self.setup_column = scroll = SetupColumn(self.setup, width=380)

        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.export_plots_button = QPushButton("Export plots...")
        self.export_checkpoint_button = QPushButton("Export checkpoint...")
        self.report_button = QPushButton("Export report...")
        self.export_model_button = QToolButton()
        self.export_model_button.setText("Export model")
        self.export_model_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        model_menu = QMenu(self.export_model_button)
        self.model_actions = {}
        for fmt, title in (
            ("nir", "NIR..."),
            ("onnx", "ONNX..."),
            ("torchscript", "TorchScript..."),
        ):
            action = model_menu.addAction(title)
            self.model_actions[fmt] = action
        model_menu.setToolTipsVisible(True)  # a disabled format says why
        self.export_model_button.setMenu(model_menu)
        self.start_button.setToolTip("Train the set-up on the left in a new run folder")
        self.stop_button.setToolTip("Stop within a second; a checkpoint is kept for Resume")
        self.resume_button.setToolTip("Continue the open run from its checkpoint")
        bar = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button):
            bar.addWidget(b)
        bar.addStretch(1)
        for b in (
            self.export_plots_button,
            self.export_checkpoint_button,
            self.export_model_button,
            self.report_button,
        ):
            bar.addWidget(b)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat(NO_RUN)
        # beside the result: one orange line when the model is no better than chance
        self.result_warning = QLabel()
        self.result_warning.setObjectName("resultWarning")
        self.result_warning.setWordWrap(True)
        self.result_warning.setStyleSheet("color: #c60;")
        self.result_warning.setVisible(False)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #a33;")
        self.message.setVisible(False)

        self.curves = CurvesView()
        self.traces = TracesView()
        self.confusion = ConfusionView()
        self.runs = RunsPane(str(default_runs_dir()))
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.traces, "Tracked example")
        self.tabs.addTab(self.confusion, "Confusion")
        self.tabs.addTab(self.runs, "Runs")
        self.tabs.addTab(self.log_view, "Log")
        self.sweep = SweepPanel(self.setup.config)
        self.tabs.addTab(self.sweep, "Sweep")

        right = QVBoxLayout()
        right.addLayout(bar)
        result_row = QHBoxLayout()
        result_row.addWidget(self.progress, 2)
        result_row.addWidget(self.result_warning, 3)
        right.addLayout(result_row)
        right.addWidget(self.message)
        right.addWidget(self.tabs, 1)
        lay = QHBoxLayout(self)
        lay.addWidget(scroll)
        lay.addLayout(right, 1)

        self.history = RunHistory()
        self.buffer: EventBuffer | None = None
        self.process_job: ProcessJob | None = None  # "Processes / GPUs" > 1: a torchrun job
        self.events_seen = 0  # progress signals received from the current worker
        self.redraw_count = 0  # buffer flushes drawn (the UI benchmark reads it)
        self.redraw_ms: deque[float] = deque(maxlen=2000)  # time per flush, on the UI thread
        self.stop_latency_s: float | None = None  # Stop pressed -> worker thread ended
        self._stop_asked = 0.0
        self._log_lines = 0
        self._screenshot = False

        self.start_button.clicked.connect(self._on_start_clicked)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        self.resume_button.clicked.connect(self._on_resume_clicked)
        self.setup.useDatasetRequested.connect(self._on_setup_use_dataset)
        # config files, plot/checkpoint/model exports and the report
        self.files = TrainingFiles(self)
        self.files.connect()
        self.runs.openRequested.connect(self._on_runs_open_requested)
        self.sweep.openRunRequested.connect(self._on_runs_open_requested)
        self.sweep.configRequested.connect(self.setup.set_config)
        context.datasetChanged.connect(self._on_context_dataset_changed)
        if context.dataset_spec and not self.setup.data.text():
            self.setup.data.setText(context.dataset_spec)
        self._sync_buttons()

    # ----- running
    @property
    def worker(self) -> WorkerHandle | ProcessJob | None:
        """The training job while it runs (in this process, or a torchrun job)."""
        job = self.process_job
        return job if job is not None and job.is_running() else self.jobs.current("train")

    @property
    def export_worker(self) -> WorkerHandle | None:
        """The export job while it runs."""
        return self.jobs.current("export")

    def is_running(self) -> bool:
        return self.worker is not None

    def start(
        self, cfg: RunConfig | None = None, run_dir=None, resume: bool = False, data=None
    ) -> WorkerHandle | None:
        """Start training ``cfg`` (default: the form) in ``run_dir`` (default: a new folder in
        the runs folder), or resume ``run_dir``. ``data`` may pass a ready FeatureSet."""
        if self.is_running():
            return None
        try:
            cfg = cfg if cfg is not None else self.setup.config()
            if run_dir is None:
                root = self.runs.folder.text().strip() or str(default_runs_dir())
                run_dir = new_run_dir(root, cfg.model)
            run_dir = str(run_dir)
            history = RunHistory.from_run(read_run(run_dir)) if resume else RunHistory(run_dir)
        except SnnError as exc:
            self.show_error(str(exc))
            return None
        self.show_error("")
        self.history = history
        self._reset_views()
        self.stop_latency_s = None
        self.events_seen = 0
        self.buffer = EventBuffer(self._on_buffer_events, 33, self)
        board = self.setup.tensorboard.isChecked()
        callbacks = dict(
            on_progress=self._on_worker_progress,
            on_failed=self._on_worker_failed,
            on_done=self._on_worker_done,
        )
        nproc = self.setup.nproc.value()
        if nproc > 1 and data is None:  # the same job as `train --nproc N`, run folder followed
            self.process_job = handle = start_process_job(
                cfg, run_dir, nproc, resume=resume, tensorboard=board, parent=self, **callbacks
            )
        else:
            handle = self.jobs.start(
                "train",
                lambda stop: train_recorded(
                    cfg, run_dir, resume=resume, stop=stop, data=data, tensorboard=board
                ),
                background=True,
                **callbacks,
            )
        self.context.set_run(run_dir)
        self.context.status(f"training {cfg.model} in {run_dir}")
        self._sync_buttons()
        self.runStarted.emit(run_dir)
        return handle

    def request_stop(self) -> None:
        """Ask the running job to stop (it keeps a checkpoint); returns at once."""
        if self.is_running() and not self.worker.stop_event.is_set():
            self._stop_asked = time.perf_counter()
            self.worker.request_stop()
            self.progress.setFormat("stopping...")
            self._sync_buttons()

    def open_run(self, run_dir: str) -> None:
        """Show a run folder (finished, stopped, or made by the CLI) in the views."""
        if self.is_running():
            self.show_error("stop the running training before opening another run")
            return
        try:
            info = read_run(run_dir)
            self.history = RunHistory.from_run(info)
            self.setup.set_config(RunConfig.from_dict(info.config, source=f"{run_dir}/config.toml"))
        except SnnError as exc:
            self.show_error(str(exc))
            return
        self.show_error("")
        self._reset_views()
        self.redraw()
        self.context.set_run(info.path)
        if info.best or info.checkpoint:
            self.context.set_checkpoint(info.best or info.checkpoint)
        self._sync_buttons()

    # ----- redraw
    def _reset_views(self) -> None:
        self.curves.reset()
        self.confusion.reset()
        self.traces.clear()
        self.log_view.clear()
        self._log_lines = 0

    def redraw(self) -> None:
        h = self.history
        self.curves.refresh(h)
        self.confusion.refresh(h)
        if self.traces.traces is not h.traces:
            self.traces.show_traces(h.traces, h.class_names)
        if len(h.log) > self._log_lines:
            self.log_view.appendPlainText("\n".join(h.log[self._log_lines :]))
            self._log_lines = len(h.log)
        self.progress.setValue(int(1000 * h.fraction))
        text = progress_text(h)
        if self.worker is not None and self.worker.stop_event.is_set() and self.is_running():
            text = "stopping... " + text
        self.progress.setFormat(text)
        warning = h.finished.warning if h.finished is not None else ""
        if warning != self.result_warning.text():
            self.result_warning.setText(warning)
            self.result_warning.setToolTip(warning)
            self.result_warning.setVisible(bool(warning))

    def _on_buffer_events(self, events: list) -> None:
        t0 = time.perf_counter()
        for ev in events:
            self.history.add(ev)
        self.redraw()
        self.redraw_count += 1
        self.redraw_ms.append((time.perf_counter() - t0) * 1000.0)

    # ----- worker signals
    def _on_worker_progress(self, event) -> None:
        self.events_seen += 1
        if self.buffer is not None:
            self.buffer.push(event)

    def _on_worker_failed(self, message: str) -> None:
        self.history.log.append(f"failed: {message}")
        self.show_error(message)
        self.context.status(message)

    def _on_worker_done(self) -> None:
        if self._stop_asked:
            self.stop_latency_s = time.perf_counter() - self._stop_asked
            self._stop_asked = 0.0
            self.history.log.append(f"stop took {self.stop_latency_s:.2f} s")
        if self.buffer is not None:
            self.buffer.stop()  # flushes the last events
            self.buffer = None
        self.redraw()
        run_dir = self.history.run_dir
        self._sync_buttons()
        self.runs.refresh()
        if run_dir and os.path.isdir(run_dir):
            self.context.set_run(run_dir)
            ckpt = checkpoint_for_prediction(run_dir)
            if ckpt is not None:
                self.context.set_checkpoint(str(ckpt))
        self.runEnded.emit(run_dir)

    def _sync_buttons(self) -> None:
        running = self.is_running()
        stopping = running and self.worker.stop_event.is_set()
        h = self.history
        has_ckpt = bool(h.run_dir) and os.path.isfile(os.path.join(h.run_dir, CHECKPOINT_FILE))
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running and not stopping)
        self.resume_button.setEnabled(not running and has_ckpt)
        self.export_checkpoint_button.setEnabled(not running and has_ckpt)
        self.report_button.setEnabled(not running and bool(h.run_dir))
        self.export_plots_button.setEnabled(running or bool(h.run_dir))  # nothing drawn yet
        self.export_model_button.setEnabled(not running and has_ckpt)

    def show_error(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # ----- buttons
    def _on_start_clicked(self) -> None:
        self.start()

    def _on_stop_clicked(self) -> None:
        self.request_stop()

    def _on_resume_clicked(self) -> None:
        run_dir = self.history.run_dir
        try:
            form = self.setup.config()
            stored = load_config(Path(run_dir) / CONFIG_FILE)
            # a resumed run keeps its own settings; only these may change (engine.train.loop)
            cfg = stored.replace(epochs=form.epochs, patience=form.patience, device=form.device)
        except SnnError as exc:
            self.show_error(str(exc))
            return
        self.start(cfg, run_dir, resume=True)

    def _on_setup_use_dataset(self) -> None:
        if self.context.dataset_spec:
            self.setup.data.setText(self.context.dataset_spec)
        else:
            self.context.status("no data set is open in the Data tab")

    def _on_context_dataset_changed(self, spec: str) -> None:
        if not self.is_running():
            self.setup.data.setText(spec)

    def _on_runs_open_requested(self, path: str) -> None:
        self.open_run(path)
        self.tabs.setCurrentWidget(self.curves)

    # ----- main-window hooks
    def save_state(self, s) -> None:
        s.setValue("runs_folder", self.runs.folder.text())
        s.setValue("view", self.tabs.currentIndex())
        s.setValue("tensorboard", self.setup.tensorboard.isChecked())
        s.setValue("processes", self.setup.nproc.value())
        s.setValue("defaults", self.setup.defaults.state())  # fields set by hand, a kept config
        try:
            s.setValue("config", self.setup.config().to_json())
        except SnnError:
            pass

    def restore_state(self, s) -> None:
        import json

        folder = read_value(s, "runs_folder", "", str)
        if folder:
            self.runs.folder.setText(folder)
        self.setup.tensorboard.setChecked(read_value(s, "tensorboard", False, bool))
        self.setup.nproc.setValue(read_value(s, "processes", 1, int))
        text = read_value(s, "config", "", str)
        if text:
            try:
                cfg = RunConfig.from_dict(json.loads(text), source="settings")
                self.setup.set_config(cfg, keep=False)
            except (SnnError, ValueError):
                pass
        self.setup.defaults.restore(read_value(s, "defaults", "", str))
        self.tabs.setCurrentIndex(read_value(s, "view", 0, int))
        self.runs.refresh()

    def shutdown(self) -> None:
        """Stop a running job and wait for its thread (window closing): a checkpoint is kept."""
        self.sweep.shutdown()
        if self.process_job is not None and not self.process_job.stop_and_wait(30000):
            log.warning("a training job's processes did not end within 30 s")
        if not self.jobs.stop_all(60000):  # training keeps a checkpoint on its way out
            log.warning("a Training tab job did not stop within 60 s")
        if self.buffer is not None:
            self.buffer.stop()
            self.buffer = None

    def prepare_screenshot(self, options: dict) -> None:
        from app.panels.training_demo import prepare

        if options.get("sweep"):  # `screenshot --tab training --sweep DIR`
            self.sweep.open_sweep(options["sweep"])
            self.tabs.setCurrentWidget(self.sweep)
            return
        prepare(self, options)

    def screenshot_ready(self) -> bool:
        from app.panels.training_demo import ready

        return self.tabs.currentWidget() is self.sweep or ready(self)
