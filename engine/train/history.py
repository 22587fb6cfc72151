"""The live model of one run that the Training tab draws: fed event by event, or from disk.

:class:`RunHistory` takes the events of :func:`engine.train.loop.train` one at a time; or
:meth:`RunHistory.from_run` fills it from a run folder, so a reopened run (from the GUI or the
command line) is drawn by the same code as a live one.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from engine.train.events import (
    Checkpointed,
    EpochEnd,
    Preparing,
    RunFinished,
    RunStarted,
    StepEnd,
    Traces,
)
from engine.train.recorded_run import load_traces
from engine.train.run_exports import read_steps
from engine.train.run_folder import LOG_FILE, TRACES_FILE, RunInfo, finite, finite_or


class RunHistory:
    """Everything the Training tab shows about one run, updated event by event.

    ``version[key]`` grows each time that part changes (keys: ``"run"``, ``"steps"``,
    ``"epochs"``, ``"confusion"``, ``"traces"``, ``"progress"``, ``"log"``) so views redraw only
    what changed.
    """

    def __init__(self, run_dir: str = ""):
        self.run_dir = run_dir
        self.config: dict = {}
        self.model = ""
        self.spiking = False
        self.n_params = 0
        self.class_names: list[str] = []
        self.epochs_total = 0
        self.steps_per_epoch = 0
        self.batch = 0
        self.device = ""
        self.step_x: list[float] = []
        self.step_loss: list[float] = []
        self.epochs: list[dict] = []  # rows like metrics.json's history
        self.confusion: np.ndarray | None = None
        self.prf: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.confusion_title = ""
        self.traces: Traces | None = None
        self.last_step: StepEnd | None = None
        self.finished: RunFinished | None = None
        self.checkpoint = ""
        self.preparing = ""
        self.status = ""
        self.log: list[str] = []
        self.version = dict.fromkeys(
            ("run", "steps", "epochs", "confusion", "traces", "progress", "log"), 0
        )
        self._t0: tuple[float, int] | None = None  # (monotonic time, global step) at first step
        self._eta = math.nan

    def _bump(self, *keys: str) -> None:
        for k in keys:
            self.version[k] += 1

    def _say(self, line: str) -> None:
        self.log.append(line)
        self._bump("log")

    # ----- events
    def add(self, ev) -> None:
        """Take one training event."""
        if isinstance(ev, StepEnd):
            self._add_step(ev)
        elif isinstance(ev, EpochEnd):
            self._add_epoch(ev)
        elif isinstance(ev, Traces):
            self.traces = ev
            self._bump("traces")
        elif isinstance(ev, Preparing):
            self.preparing = ev.message + (f" {ev.done}/{ev.total}" if ev.total else "")
            self.status = "preparing"
            self._bump("progress")
        elif isinstance(ev, RunStarted):
            self._add_started(ev)
        elif isinstance(ev, Checkpointed):
            self.checkpoint = ev.path
            if ev.reason == "stop":
                self._say(f"stopped: checkpoint written to {ev.path} (epoch {ev.epoch} done)")
        elif isinstance(ev, RunFinished):
            self._add_finished(ev)

    def _add_started(self, ev: RunStarted) -> None:
        self.run_dir = ev.run_dir
        self.config = dict(ev.config)
        self.model, self.spiking, self.n_params = ev.model, ev.spiking, ev.n_params
        self.class_names = list(ev.class_names)
        self.epochs_total, self.steps_per_epoch = ev.epochs, ev.steps_per_epoch
        self.batch = int(self.config.get("batch", 0))
        self.device = ev.device
        self.status = "running"
        self.preparing = ""
        self._t0 = None
        self._bump("run", "progress")
        self._say(
            f"{'resumed' if ev.resumed else 'started'} {ev.model} ({ev.n_params:,} parameters) "
            f"on {ev.device}: {ev.n_train} train, {ev.n_val} val, {ev.n_test} test examples"
        )

    def _add_step(self, ev: StepEnd) -> None:
        self.step_x.append(float(ev.global_step))
        self.step_loss.append(float(ev.loss))
        self.last_step = ev
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = (now, ev.global_step)
        else:
            t0, g0 = self._t0
            total = self.epochs_total * ev.steps_per_epoch
            if ev.global_step > g0:
                self._eta = (now - t0) / (ev.global_step - g0) * max(0, total - ev.global_step)
        self._bump("steps", "progress")

    def _add_epoch(self, ev: EpochEnd) -> None:
        self.epochs.append(
            {
                "epoch": ev.epoch,
                "train_loss": ev.train_loss,
                "train_acc": ev.train_acc,
                "val_loss": ev.val_loss,
                "val_acc": ev.val_acc,
                "lr": ev.lr,
                "epoch_time_s": ev.epoch_time_s,
                "synops": ev.synops,
                "macs": ev.macs,
                "firing_rates": {s.name: s.firing_rate for s in ev.layers},
                "dead_fractions": {s.name: s.dead_fraction for s in ev.layers},
            }
        )
        self.confusion = np.asarray(ev.confusion)
        self.prf = (np.asarray(ev.precision), np.asarray(ev.recall), np.asarray(ev.f1))
        self.confusion_title = f"validation, epoch {ev.epoch}"
        self._bump("epochs", "confusion")
        self._say(
            f"epoch {ev.epoch}/{ev.epochs}: train loss {ev.train_loss:.4f} acc "
            f"{ev.train_acc:.3f}, val loss {ev.val_loss:.4f} acc {ev.val_acc:.3f}"
            f"{' (best)' if ev.is_best else ''}, {ev.epoch_time_s:.1f} s"
        )

    def _add_finished(self, ev: RunFinished) -> None:
        self.finished = ev
        self.status = ev.status
        if ev.test_confusion is not None:
            self.confusion = np.asarray(ev.test_confusion)
            from engine.train.metrics import precision_recall_f1

            self.prf = precision_recall_f1(self.confusion)
            self.confusion_title = f"test, best epoch {ev.best_epoch}"
            self._bump("confusion")
        self._bump("progress")
        test = "" if math.isnan(ev.test_acc) else f", test accuracy {ev.test_acc:.3f}"
        self._say(f"finished ({ev.status}) after {ev.epochs_done} epochs{test}")
        if ev.warning:
            self._say(f"warning: {ev.warning}")

    # ----- derived values
    def smoothed_loss(self, weight: float = 0.9) -> np.ndarray:
        """Exponential moving average of the step losses, bias-corrected at the start."""
        y = np.asarray(self.step_loss, dtype=float)
        out = np.empty_like(y)
        acc = 0.0
        for i, v in enumerate(y):
            acc = weight * acc + (1 - weight) * v
            out[i] = acc / (1 - weight ** (i + 1))
        return out

    def epoch_column(self, key: str) -> np.ndarray:
        return np.array([finite_or(r.get(key)) for r in self.epochs], dtype=float)

    def layer_series(self, key: str) -> dict[str, np.ndarray]:
        """Per-layer ``firing_rates`` or ``dead_fractions`` over the epochs (NaN where absent)."""
        names: list[str] = []
        for r in self.epochs:
            names += [n for n in r.get(key, {}) if n not in names]
        return {
            n: np.array([finite(r.get(key, {}).get(n)) or 0.0 for r in self.epochs]) for n in names
        }

    @property
    def total_steps(self) -> int:
        return self.epochs_total * self.steps_per_epoch

    @property
    def fraction(self) -> float:
        """Share of the run's steps done (1 when finished normally)."""
        if self.finished is not None and self.finished.status != "stopped":
            return 1.0
        if self.last_step is None or not self.total_steps:
            return len(self.epochs) / self.epochs_total if self.epochs_total else 0.0
        return min(1.0, self.last_step.global_step / self.total_steps)

    @property
    def eta_s(self) -> float:
        """Seconds left by the step rate seen since this session's first step (NaN early on)."""
        return self._eta if self.status == "running" else math.nan

    # ----- from disk
    @classmethod
    def from_run(cls, run: RunInfo) -> RunHistory:
        """A finished or interrupted run as the tab would have seen it (per-step losses from
        ``steps.csv`` when the run wrote one)."""
        h = cls(run.path)
        m = run.metrics
        started = run.last_event("RunStarted") or {}
        h.config = dict(run.config)
        h.model = run.model
        h.spiking = bool(m.get("spiking", started.get("spiking", False)))
        h.n_params = int(m.get("params") or started.get("n_params") or 0)
        h.class_names = run.class_names
        h.epochs_total = int(run.config.get("epochs", 0))
        h.steps_per_epoch = int(started.get("steps_per_epoch") or 0)
        h.batch = int(run.config.get("batch", 0))
        h.device = str(m.get("device") or started.get("device", ""))
        h.epochs = run.history
        h.status = run.status
        h.checkpoint = run.checkpoint or ""
        last = run.last_event("EpochEnd")
        if last and last.get("confusion"):
            h.confusion = np.asarray(last["confusion"], dtype=np.int64)
            h.prf = tuple(
                np.asarray([finite_or(v, 0.0) for v in last.get(k, [])])
                for k in ("precision", "recall", "f1")
            )
            h.confusion_title = f"validation, epoch {last.get('epoch')}"
        test = m.get("test") or {}
        if test.get("confusion"):
            h.confusion = np.asarray(test["confusion"], dtype=np.int64)
            h.prf = tuple(
                np.asarray([finite_or(v, 0.0) for v in test.get(k, [])])
                for k in ("precision", "recall", "f1")
            )
            h.confusion_title = f"test, best epoch {m.get('best_epoch')}"
        fin = run.last_event("RunFinished")
        if fin and run.status not in ("unfinished", "new"):
            conf = fin.get("test_confusion")
            h.finished = RunFinished(
                status=str(fin.get("status")),
                epochs_done=int(fin.get("epochs_done") or 0),
                best_epoch=int(fin.get("best_epoch") or 0),
                best_val_acc=finite_or(fin.get("best_val_acc")),
                test_acc=finite_or(fin.get("test_acc")),
                test_loss=finite_or(fin.get("test_loss")),
                test_confusion=None if conf is None else np.asarray(conf, dtype=np.int64),
                total_time_s=finite_or(fin.get("total_time_s"), 0.0),
                run_dir=run.path,
                warning=str(fin.get("warning") or m.get("warning") or ""),
            )
        h.traces = load_traces(Path(run.path) / TRACES_FILE)
        step_x, step_loss = read_steps(run.path)
        h.step_x, h.step_loss = step_x.tolist(), step_loss.tolist()
        try:
            h.log = (Path(run.path) / LOG_FILE).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            h.log = []
        for k in h.version:
            h.version[k] = 1
        return h
