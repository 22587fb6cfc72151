"""Run files for other tools: ``metrics.csv``, ``steps.csv`` and TensorBoard event files.

:class:`RunTables` turns training events into two CSV files (one row per epoch, one row per
step) that a spreadsheet, pandas or a plotting script reads without this package; every run
writes them (:class:`engine.train.traces.RunFiles` feeds it). :class:`TensorBoardLog` writes the
same numbers as TensorBoard scalars into ``RUN/tb`` when asked (``--tensorboard``, or the
Training tab's check box); it needs the optional ``tensorboard`` package.

Resuming: a resumed run drops the rows at or after its first new step (or epoch) before it
appends, so a run killed after its last checkpoint does not list those steps twice.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np

from engine.atomic import write_atomic
from engine.errors import ConfigError
from engine.train.events import EpochEnd, RunFinished, StepEnd
from engine.train.run_folder import EPOCHS_CSV, STEPS_CSV, TENSORBOARD_DIR

STEP_COLUMNS = (
    "global_step",
    "epoch",
    "step",
    "loss",
    "accuracy",
    "lr",
    "samples_per_s",
    "elapsed_s",
)
EPOCH_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "best_val_acc",
    "lr",
    "epoch_time_s",
    "elapsed_s",
    "synops",
    "macs",
)


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    return str(v)


def _number(text: str) -> float:
    try:
        return float(text) if text != "" else math.nan
    except ValueError:
        return math.nan


def read_table(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A CSV written by :class:`CsvLog` as ``{column: float array}`` (empty cells are NaN);
    ``{}`` when the file is absent. A half-written last line (a run in progress) is left out."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return {}
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    if body and not text.endswith("\n"):
        body = body[:-1]
    body = [r for r in body if len(r) == len(header)]
    return {
        name: np.array([_number(r[i]) for r in body], dtype=float) for i, name in enumerate(header)
    }


class CsvLog:
    """An append-only CSV with a header; the rows are keyed by an increasing column ``key``.

    The first append of a session first drops the rows whose key is at or after the new row's
    (rewriting the file atomically), so a resumed run continues the table where it restarts.
    """

    def __init__(self, path: str | os.PathLike, columns: tuple[str, ...], key: str):
        self.path = Path(path)
        self.columns = columns
        self.key = key
        self._ready = False

    def _prepare(self, first_key: float) -> None:
        table = read_table(self.path)
        kept = []
        if table and list(table) == list(self.columns):
            keys = table[self.key]
            kept = [
                [_cell(_plain(table[c][i])) for c in self.columns]
                for i in range(len(keys))
                if keys[i] < first_key
            ]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(kept)
        write_atomic(self.path, buf.getvalue())
        self._ready = True

    def append(self, row: dict) -> None:
        if not self._ready:
            self._prepare(float(row[self.key]))
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow([_cell(row[c]) for c in self.columns])
        with open(self.path, "a", encoding="utf-8", newline="") as fh:
            fh.write(line.getvalue())


def _plain(v: float):
    """A float read back from the CSV as an int when it is one (epochs, steps)."""
    return int(v) if math.isfinite(v) and v == int(v) and abs(v) < 2**53 else float(v)


class RunTables:
    """``steps.csv`` and ``metrics.csv`` of one run folder, fed with training events."""

    def __init__(self, run_dir: str | os.PathLike):
        run = Path(run_dir)
        self.steps = CsvLog(run / STEPS_CSV, STEP_COLUMNS, "global_step")
        self.epochs = CsvLog(run / EPOCHS_CSV, EPOCH_COLUMNS, "epoch")

    def add(self, ev) -> None:
        if isinstance(ev, StepEnd):
            self.steps.append({c: getattr(ev, c) for c in STEP_COLUMNS})
        elif isinstance(ev, EpochEnd):
            self.epochs.append({c: getattr(ev, c) for c in EPOCH_COLUMNS})


def read_steps(run_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(global_step, loss)`` of a run's ``steps.csv`` (empty arrays when it has none)."""
    t = read_table(Path(run_dir) / STEPS_CSV)
    if not t or "global_step" not in t or "loss" not in t:
        return np.zeros(0), np.zeros(0)
    return t["global_step"], t["loss"]


class TensorBoardLog:
    """TensorBoard scalars of a run in ``RUN/tb``: the step loss, then per epoch the losses,
    accuracies, learning rate, epoch time and (spiking models) each layer's firing rate, and the
    test accuracy at the end. The x axis is always the global training step."""

    def __init__(self, run_dir: str | os.PathLike):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "--tensorboard needs the tensorboard package: "
                "pip install 'snn-explorer[tensorboard]' (or pip install tensorboard)"
            ) from None
        self._writer_cls = SummaryWriter
        self.log_dir = Path(run_dir) / TENSORBOARD_DIR
        self.writer = None
        self.global_step = 0

    def _open(self, first_step: int | None) -> None:
        # purge_step drops what an interrupted session wrote after its last checkpoint
        self.writer = self._writer_cls(str(self.log_dir), purge_step=first_step)

    def add(self, ev) -> None:
        if isinstance(ev, StepEnd):
            if self.writer is None:
                self._open(ev.global_step)
            self.global_step = ev.global_step
            self.writer.add_scalar("loss/train_step", ev.loss, ev.global_step)
            self.writer.add_scalar("accuracy/train_step", ev.accuracy, ev.global_step)
        elif isinstance(ev, EpochEnd):
            if self.writer is None:
                self._open(None)
            g, w = self.global_step, self.writer
            w.add_scalar("loss/train", ev.train_loss, g)
            w.add_scalar("loss/val", ev.val_loss, g)
            w.add_scalar("accuracy/train", ev.train_acc, g)
            w.add_scalar("accuracy/val", ev.val_acc, g)
            w.add_scalar("lr", ev.lr, g)
            w.add_scalar("epoch", ev.epoch, g)
            w.add_scalar("time/epoch_s", ev.epoch_time_s, g)
            for layer in ev.layers:
                w.add_scalar(f"firing_rate/{layer.name}", layer.firing_rate, g)
            w.flush()
        elif isinstance(ev, RunFinished) and self.writer is not None:
            if math.isfinite(ev.test_acc):
                self.writer.add_scalar("accuracy/test", ev.test_acc, self.global_step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
