"""The Live tab: classify what the microphone hears, window by window and sound by sound.

Capture runs in PortAudio's callback thread, which only queues blocks; ``engine.live.listen.listen``
classifies them on a worker thread (``app.workers``); its events reach the GUI through an
``EventBuffer`` whose timer redraws the plots, so the window never waits on audio or a model.
Without a microphone the tab says so and still classifies audio files (opened or dropped).
The Record sub-tab makes a folder data set from the microphone.
"""

from __future__ import annotations

import html
import logging
import os
from collections import deque
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QTabWidget, QWidget

from app.panels.live_controls import NO_MODEL, LiveControls, said
from app.panels.live_record import RecordView
from app.panels.live_views import LiveViews
from app.widgets import scroll_column
from app.workers import EventBuffer, PanelJobs
from engine.audio.load import AUDIO_EXTENSIONS
from engine.errors import SnnError
from engine.live.listen import (
    NO_DEVICE,
    AudioBlock,
    FileOpened,
    LiveConfig,
    LiveStarted,
    LiveStopped,
    classify_file,
    list_input_devices,
    listen,
    refresh_devices,
)
from engine.live.window import RingBuffer, SoundEvent, WindowPrediction, latency_summary

log = logging.getLogger(__name__)

SHOWN_SECONDS = 5.0  # scrolling waveform length
HISTORY = 240  # predictions kept for the history plot


class LivePanel(QWidget):
    def __init__(self, context, parent=None):
        super().__init__(parent)
        self.context = context
        self.controls = LiveControls()
        scroll = scroll_column(self.controls, width=330)
        self.views = LiveViews()
        self.record = RecordView(context, self.controls.device_index)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.views, "Classify")
        self.tabs.addTab(self.record, "Record a data set")
        lay = QHBoxLayout(self)
        lay.addWidget(scroll)
        lay.addWidget(self.tabs, 1)
        self.setAcceptDrops(True)

        self.predictor = None
        self.checkpoint = ""
        self.devices: list = []
        self.jobs = PanelJobs(self)  # "audio": the live stream or a file being classified
        self.mode = ""  # "live" or "file"
        self.buffer = EventBuffer(self._on_buffer_events, 40, self)
        self.shown = RingBuffer(1)
        self.rate = 8000
        self.history: deque[tuple[float, np.ndarray]] = deque(maxlen=HISTORY)
        self.latencies: deque[float] = deque(maxlen=200)
        self.last_prediction: WindowPrediction | None = None
        self.last_sound: SoundEvent | None = None
        self.file_result: list = []
        self.file_path = ""
        self.summary: LiveStopped | None = None
        self.error = ""

        c = self.controls
        c.open_checkpoint.clicked.connect(self._on_open_checkpoint_clicked)
        c.refresh.clicked.connect(self._on_refresh_clicked)
        c.start.toggled.connect(self._on_start_toggled)
        c.open_file.clicked.connect(self._on_open_file_clicked)
        context.checkpointChanged.connect(self._on_context_checkpoint_changed)
        self.refresh_devices(reinit=False)
        if context.checkpoint:
            self.load_checkpoint(context.checkpoint)
        if self.predictor is None:
            self.views.show_heard("Load a model (left) to classify what the microphone hears")
        self._sync()

    # ----- devices and model
    def refresh_devices(self, reinit: bool = True) -> None:
        try:
            if reinit:
                refresh_devices()
            self.devices = list_input_devices()
        except SnnError as exc:
            self.devices = []
            self.controls.set_message(str(exc), error=True)
        self.controls.set_devices(self.devices)
        if not self.devices:
            self.controls.set_message(
                "No microphone found: connect one and press Refresh. You can still classify "
                "audio files: open one, or drop it onto this tab.",
                error=True,
            )
        elif not self.error:
            self.controls.set_message(f"{len(self.devices)} capture device(s).")
        self._sync()

    def load_checkpoint(self, path: str) -> bool:
        from engine.train.checkpoint import Predictor

        try:
            predictor = Predictor.from_checkpoint(path)
            if predictor.feature_config is None or predictor.is_image:
                raise SnnError(f"{path}: this model classifies images, not sound")
        except SnnError as exc:
            self.controls.model_info.setText(f"{exc}\n\n{NO_MODEL}")
            self.context.status(str(exc))
            return False
        self.stop()
        self.predictor, self.checkpoint = predictor, str(path)
        fc = predictor.feature_config
        names = predictor.class_names
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        model = predictor.checkpoint.model.get("name", "?")
        steps = f", {predictor.config.steps} steps" if predictor.spiking else ""
        self.controls.model_info.setText(
            f"<b>{Path(path).name}</b> ({Path(path).parent.name})<br>{model}{steps}, "
            f"{len(names)} classes: {shown}<br>{fc.duration:g}-s clips at {fc.sample_rate} Hz, "
            f"{fc.kind} {fc.n_features}x{fc.frames()}"
            + (
                f'<br><span style="color:#c60">{html.escape(predictor.chance_note)}</span>'
                if predictor.chance_note
                else ""
            )
        )
        self.views.set_classes(names)
        self.history.clear()
        self._sync()
        return True

    def _sync(self) -> None:
        running = self._busy()
        self.controls.set_listening(running and self.mode == "live")
        self.controls.start.setEnabled(
            self.predictor is not None
            and bool(self.devices)
            and not (running and self.mode == "file")
        )
        self.controls.open_file.setEnabled(self.predictor is not None and not running)

    # ----- live
    def start(self) -> bool:
        if self.predictor is None or not self.devices or self._busy():
            return False
        cfg = LiveConfig(
            device=self.controls.device_index(),
            window_s=self.controls.window_s(),
            hop_s=self.controls.hop.value(),
            keep_features=True,
            threshold=self.controls.threshold.value(),
        )
        predictor = self.predictor
        self.error = ""
        self.summary = None
        self.history.clear()
        self.latencies.clear()
        self.views.clear()
        self.mode = "live"
        self._start(lambda stop: listen(predictor, cfg, stop))
        self.controls.set_message("Listening...")
        self._sync()
        return True

    def stop(self) -> None:
        self.jobs.stop("audio")

    def _busy(self) -> bool:
        return self.jobs.busy("audio")

    def _start(self, factory):
        handle = self.jobs.start(
            "audio",
            factory,
            on_progress=self.buffer.push,
            on_finished=self._on_worker_finished,
            on_failed=self._on_worker_failed,
            on_done=self._sync,  # buttons follow the thread, which ends after the job
        )
        return handle

    # ----- files
    def classify_path(self, path: str) -> bool:
        if self.predictor is None:
            self.controls.file_info.setText("Load a model first (Model, above).")
            return False
        if self._busy():
            self.controls.file_info.setText("Stop listening first, then classify the file.")
            return False
        predictor, hop = self.predictor, self.controls.hop.value()
        window = self.controls.window_s()
        self.error = ""
        self.file_result = []
        self.file_path = str(path)
        self.history.clear()
        self.views.clear()
        self.mode = "file"
        self.controls.file_info.setText(f"Classifying {Path(path).name}...")
        self._start(
            lambda stop: classify_file(predictor, path, window_s=window, hop_s=hop, stop=stop)
        )
        self._sync()
        return True

    # ----- events (GUI thread, from the buffer's timer)
    def _on_buffer_events(self, events: list) -> None:
        new_prediction = False
        for ev in events:
            if isinstance(ev, AudioBlock):
                self.shown.write(ev.samples)
                self.views.level.show_peak(ev.peak)
            elif isinstance(ev, WindowPrediction):
                self.last_prediction = ev
                self.history.append((ev.end / ev.sample_rate, ev.probs))
                self.latencies.append(ev.latency_ms)
                new_prediction = True
            elif isinstance(ev, SoundEvent):
                self.last_sound = ev
                if self.mode == "file":
                    self.file_result.append(ev)
                self.views.show_heard(
                    f"heard: {said(ev.prediction, self.controls.threshold.value())}  "
                    f"({ev.class_name} {ev.confidence:.0%}) at {ev.start_s:.1f} s"
                )
                self.views.show_sound(ev.start_s, ev.end_s)
            elif isinstance(ev, LiveStarted):
                self.rate = ev.sample_rate
                self.shown = RingBuffer(int(SHOWN_SECONDS * ev.sample_rate))
                self.controls.set_message(
                    f"Listening on {ev.device}, {ev.sample_rate} Hz; window {ev.window_s:g} s, "
                    f"hop {ev.hop_s:g} s."
                )
            elif isinstance(ev, FileOpened):
                self.rate = ev.sample_rate
                self.shown = RingBuffer(max(1, len(ev.samples)))
                self.shown.write(ev.samples)
                self.views.level.show_peak(float(np.max(np.abs(ev.samples), initial=0.0)))
            elif isinstance(ev, LiveStopped):
                self.summary = ev
        self._redraw(new_prediction)

    def _redraw(self, new_prediction: bool) -> None:
        total = self.shown.total
        n = min(total, self.shown.capacity)
        if n:
            t = (np.arange(total - n, total)) / self.rate
            self.views.show_audio(t, self.shown.latest(n))
        if new_prediction and self.last_prediction is not None and self.mode == "live":
            p = self.last_prediction
            self.views.show_prediction(p)
            self.views.show_window(p.start / p.sample_rate, p.end / p.sample_rate)
        if self.history:
            times = np.array([h[0] for h in self.history])
            self.views.show_history(times, np.stack([h[1] for h in self.history]))
        if self.latencies and self.mode == "live":
            median, p95 = latency_summary(list(self.latencies))
            self.views.show_latency(
                f"latency {self.latencies[-1]:.0f} ms (median {median:.0f}, p95 {p95:.0f})  "
            )

    def _on_worker_finished(self, result) -> None:
        self.buffer.flush()
        if self.mode == "file":
            self._show_file_result(result or [])
        elif self.summary is not None:
            s = self.summary
            self.controls.set_message(
                f"Stopped: {s.predictions} windows, {s.sounds} sounds; latency median "
                f"{s.median_ms:.1f} ms, p95 {s.p95_ms:.1f} ms."
            )
        self._sync()

    def _show_file_result(self, events: list) -> None:
        sounds = [e for e in events if isinstance(e, SoundEvent)]
        windows = [e for e in events if isinstance(e, WindowPrediction)]
        best = max(sounds, key=lambda s: s.confidence).prediction if sounds else None
        if best is None and windows:
            best = windows[0] if len(windows) == 1 else max(windows, key=lambda w: w.confidence)
        if best is None:
            self.controls.file_info.setText("The file gave no prediction.")
            return
        self.last_prediction = best
        self.views.show_prediction(best)
        name = Path(self.file_path).name
        if len(windows) == 1 and not sounds and best.waveform is not None:
            # a clip shorter than the window: show it as the model saw it, placed in its window
            y = best.waveform
            self.views.show_audio(np.arange(len(y)) / self.predictor.feature_config.sample_rate, y)
            self.views.show_window(0.0, len(y) / self.predictor.feature_config.sample_rate)
            what = "the whole clip, placed in the model's window as in training"
        else:
            self.views.show_window(best.start / best.sample_rate, best.end / best.sample_rate)
            what = f"{len(sounds)} sound(s), {len(windows)} window(s); showing the most confident"
        word = said(best, self.controls.threshold.value())
        self.views.show_heard(f"{name}: {word}  ({best.class_name} {best.confidence:.0%})")
        self.views.show_latency(f"inference {best.latency_ms:.0f} ms  ")
        self.controls.file_info.setText(f"{name}: {what}.")

    def _on_worker_failed(self, message: str) -> None:
        self.error = message
        self.buffer.flush()
        if self.mode == "live":
            self.controls.set_message(f"{message}. Files can still be classified.", error=True)
            if NO_DEVICE in message or "stopped delivering" in message:
                self.refresh_devices(reinit=False)
        else:
            self.controls.file_info.setText(message)
        self.context.status(message)
        self._sync()

    # ----- handlers
    def _on_start_toggled(self, on: bool) -> None:
        if on:
            if not self.start():
                self._sync()
        else:
            self.stop()

    def _on_refresh_clicked(self) -> None:
        if not self._busy():
            self.error = ""
            self.refresh_devices()

    def _on_open_checkpoint_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open checkpoint", "", "Checkpoints (*.pt);;All files (*)"
        )
        if path:
            self.load_checkpoint(path)

    def _on_open_file_clicked(self) -> None:
        pattern = " ".join(f"*{e}" for e in AUDIO_EXTENSIONS)
        path, _ = QFileDialog.getOpenFileName(
            self, "Classify an audio file", "", f"Audio ({pattern});;All files (*)"
        )
        if path:
            self.classify_path(path)

    def _on_context_checkpoint_changed(self, path: str) -> None:
        if path and self.controls.follow_training.isChecked() and not self._busy():
            self.load_checkpoint(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        for path in paths:
            if path.endswith(".pt"):
                self.load_checkpoint(path)
        audio = [p for p in paths if os.path.splitext(p)[1].lower() in AUDIO_EXTENSIONS]
        if audio:
            self.classify_path(audio[0])
        event.acceptProposedAction()

    # ----- main-window hooks
    def save_state(self, s) -> None:
        self.controls.save_state(s)
        s.setValue("checkpoint", self.checkpoint)
        s.setValue("tab", self.tabs.currentIndex())
        self.record.save_state(s)

    def restore_state(self, s) -> None:
        from app.settings import read_value

        self.controls.restore_state(s)
        self.record.restore_state(s)
        self.tabs.setCurrentIndex(read_value(s, "tab", 0, int))
        path = read_value(s, "checkpoint", "", str)
        if path and not self.predictor and os.path.isfile(path):
            self.load_checkpoint(path)

    def prepare_screenshot(self, options: dict) -> None:
        from engine.live.listen import example_clip

        path = options.get("checkpoint")
        self._screenshot_waiting = False
        if path and self.load_checkpoint(path):
            clip = example_clip(self.predictor)
            if clip:
                self._screenshot_waiting = self.classify_path(clip)

    def screenshot_ready(self) -> bool:
        return not getattr(self, "_screenshot_waiting", False) or not self._busy()

    def shutdown(self) -> None:
        if not self.jobs.stop_all():
            log.warning("the live audio thread did not stop in time")
        self.record.shutdown()
        self.buffer.stop()
