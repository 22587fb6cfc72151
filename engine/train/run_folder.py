"""Run folders: read what ``train`` wrote and compare runs.

A run folder (written by :func:`engine.train.loop.train`, from the CLI or the GUI) holds
``config.toml``, ``metrics.json``, ``events.jsonl``, ``checkpoint.pt``, ``best.pt`` and ``log.txt``.
:func:`engine.train.recorded_run.train_recorded` (what the GUI runs) adds ``traces.npz`` (the latest
traces of the tracked validation example) and ``usage.json`` (peak memory); readers treat both
as optional, so a run started from the command line opens the same way.

Related: :mod:`engine.train.recorded_run` (driving ``train`` and the extra files, small real data for
demos) and :mod:`engine.train.history` (the live model the Training tab draws from).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.atomic import is_partial
from engine.errors import DataError

# every file name of a run folder, here and nowhere else
CONFIG_FILE = "config.toml"
CHECKPOINT_FILE = "checkpoint.pt"  # the latest epoch (what a resume continues from)
BEST_FILE = "best.pt"  # the kept model (the one tested)
METRICS_FILE = "metrics.json"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "log.txt"
TRACES_FILE = "traces.npz"  # written by engine.train.recorded_run
USAGE_FILE = "usage.json"
EPOCHS_CSV = "metrics.csv"  # one row per epoch (engine.train.run_exports)
STEPS_CSV = "steps.csv"  # one row per training step (engine.train.run_exports)
TENSORBOARD_DIR = "tb"  # TensorBoard event files, when asked for (engine.train.run_exports)
CV_SUMMARY_FILE = "cv_summary.json"  # a cross-validation's parent folder (engine.train.cv_folder)


def checkpoint_for_prediction(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint to predict with: ``best.pt``, else ``checkpoint.pt``; None when neither."""
    for name in (BEST_FILE, CHECKPOINT_FILE):
        p = Path(run_dir) / name
        if p.is_file():
            return p
    return None


# ----- reading folders
@dataclass(frozen=True)
class RunInfo:
    """What a run folder holds (read once; re-read to refresh)."""

    path: str
    name: str
    config: dict
    metrics: dict  # metrics.json ({} before the first epoch ends)
    events: tuple[dict, ...]  # events.jsonl lines
    status: str  # "completed", "early_stopped", "stopped", "unfinished" or "new"
    checkpoint: str | None  # checkpoint.pt (latest), when present
    best: str | None  # best.pt, when present
    usage: dict  # usage.json ({} when absent)
    modified: float  # newest file time (s since the epoch)

    @property
    def model(self) -> str:
        return str(self.metrics.get("model") or self.config.get("model", "?"))

    @property
    def history(self) -> list[dict]:
        return list(self.metrics.get("history") or [])

    @property
    def class_names(self) -> list[str]:
        names = self.metrics.get("class_names")
        if names:
            return [str(c) for c in names]
        started = self.last_event("RunStarted")
        return [str(c) for c in started.get("class_names", [])] if started else []

    def last_event(self, kind: str) -> dict | None:
        for ev in reversed(self.events):
            if ev.get("event") == kind:
                return ev
        return None


def is_run_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` looks like a run folder (a config plus metrics, events or checkpoint)."""
    p = Path(path)
    return (p / CONFIG_FILE).is_file() and any(
        (p / n).is_file() for n in (METRICS_FILE, EVENTS_FILE, CHECKPOINT_FILE)
    )


def clear_temporaries(path: str | os.PathLike) -> list[str]:
    """Remove the hidden temporaries a killed writer left in a run folder.

    Every run file is written through :mod:`engine.atomic` (``.NAME.<pid>.part``; older versions
    wrote ``.NAME...tmp``) and renamed into place, so one that is still there belongs to a writer
    that died mid-write; only the run's own (single) writer calls this, before it starts. Returns
    the names removed.
    """
    removed = []
    for p in Path(path).glob(".*"):
        old = p.name.endswith(".tmp") or ".tmp." in p.name
        if p.is_file() and (old or is_partial(p.name)):
            try:
                p.unlink()
            except OSError:
                continue
            removed.append(p.name)
    return sorted(removed)


def read_events(path: str | os.PathLike) -> list[dict]:
    """Lines of ``events.jsonl``; a half-written last line (a run in progress) is left out."""
    out = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(ev, dict):
                    out.append(ev)
    except FileNotFoundError:
        return []
    return out


def read_json(path: Path) -> dict:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); the run folder is damaged") from None
    return d if isinstance(d, dict) else {}


def read_run(path: str | os.PathLike) -> RunInfo:
    """Read a run folder (DataError naming the folder when it is not one)."""
    from engine.train.config import tomllib

    p = Path(path)
    if not is_run_dir(p):
        raise DataError(
            f"{p}: not a run folder (needs config.toml and metrics.json, events.jsonl or "
            "checkpoint.pt, as `snn-explorer train --out` writes)"
        )
    try:
        config = tomllib.loads((p / CONFIG_FILE).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{p / CONFIG_FILE}: not valid TOML ({exc})") from None
    metrics = read_json(p / METRICS_FILE)
    events = tuple(read_events(p / EVENTS_FILE))
    usage = read_json(p / USAGE_FILE)
    status = "new"
    finished = [e for e in events if e.get("event") == "RunFinished"]
    started = [e for e in events if e.get("event") == "RunStarted"]
    if finished and (not started or events.index(finished[-1]) > events.index(started[-1])):
        status = str(finished[-1].get("status", "completed"))
    elif metrics or started:
        status = "unfinished"  # still running, or the process ended without finishing
    files = [f for f in p.iterdir() if f.is_file()]
    modified = max((f.stat().st_mtime for f in files), default=0.0)
    ckpt, best = p / CHECKPOINT_FILE, p / BEST_FILE
    return RunInfo(
        path=str(p),
        name=p.name,
        config=config,
        metrics=metrics,
        events=events,
        status=status,
        checkpoint=str(ckpt) if ckpt.is_file() else None,
        best=str(best) if best.is_file() else None,
        usage=usage,
        modified=modified,
    )


def list_runs(folder: str | os.PathLike) -> list[RunInfo]:
    """Every run folder directly inside ``folder`` (and ``folder`` itself if it is one),
    newest first; damaged folders are left out."""
    root = Path(folder)
    if not root.is_dir():
        return []
    candidates = [root] if is_run_dir(root) else []
    candidates += sorted(d for d in root.iterdir() if d.is_dir() and is_run_dir(d))
    runs = []
    for d in candidates:
        try:
            runs.append(read_run(d))
        except DataError:
            continue
    return sorted(runs, key=lambda r: r.modified, reverse=True)


def new_run_dir(root: str | os.PathLike, model: str) -> Path:
    """A fresh, not yet existing folder ``root/YYYYmmdd-HHMMSS-model[-N]``."""
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{model}"
    p = Path(root) / base
    n = 2
    while p.exists():
        p = Path(root) / f"{base}-{n}"
        n += 1
    return p


def default_runs_dir() -> Path:
    """Where runs go unless the user picks a folder: ``$SNN_EXPLORER_RUNS`` or
    ``~/snn-explorer-runs`` (not created here)."""
    return Path(os.environ.get("SNN_EXPLORER_RUNS") or Path.home() / "snn-explorer-runs")


# ----- comparison
@dataclass(frozen=True)
class ComparisonRow:
    """One line of the runs comparison table (``None`` = not known for that run)."""

    name: str
    path: str
    model: str
    spiking: bool
    status: str
    epochs_done: int
    best_val_acc: float | None
    test_acc: float | None
    epoch_time_s: float | None  # mean over the epochs done
    params: int | None
    peak_memory_bytes: int | None
    synops: float | None  # per inference, spiking models
    macs: float | None  # per inference

    def cells(self) -> list[str]:
        """The row as display strings, in ``COMPARISON_COLUMNS`` order."""

        def pct(v):
            return "" if v is None else f"{100 * v:.1f}%"

        return [
            self.name,
            self.model + (" (SNN)" if self.spiking else ""),
            self.status,
            str(self.epochs_done),
            pct(self.best_val_acc),
            pct(self.test_acc),
            "" if self.epoch_time_s is None else f"{self.epoch_time_s:.1f}",
            "" if self.params is None else f"{self.params:,}",
            "" if self.peak_memory_bytes is None else f"{self.peak_memory_bytes / 2**20:.0f}",
            _si(self.synops),
            _si(self.macs),
        ]


COMPARISON_COLUMNS = (
    "run",
    "model",
    "status",
    "epochs",
    "best val acc",
    "test acc",
    "s / epoch",
    "parameters",
    "peak MiB",
    "SynOps / inf.",
    "MACs / inf.",
)


def _si(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return ""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.2f} {suffix}"
    return f"{v:.0f}"


def finite(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def finite_or(v, default: float = math.nan) -> float:
    """``v`` as a finite float, else ``default`` (JSON nulls stand for NaN)."""
    f = finite(v)
    return default if f is None else f


def peak_memory(run: RunInfo) -> int | None:
    """Peak memory of a run in bytes: metrics.json's ``peak_memory_bytes`` when the trainer
    records it, else ``usage.json`` (written by :func:`train_recorded`)."""
    for source in (run.metrics, run.usage):
        v = finite(source.get("peak_memory_bytes"))
        if v is not None:
            return int(v)
    return None


def comparison_row(run: RunInfo) -> ComparisonRow:
    m = run.metrics
    test = m.get("test") or {}
    started = run.last_event("RunStarted") or {}
    history = run.history
    times = [h["epoch_time_s"] for h in history if finite(h.get("epoch_time_s")) is not None]
    spiking = bool(m.get("spiking", started.get("spiking", False)))
    synops = finite(m.get("synops"))
    return ComparisonRow(
        name=run.name,
        path=run.path,
        model=run.model,
        spiking=spiking,
        status=run.status,
        epochs_done=int(m.get("epochs_done") or len(history)),
        best_val_acc=finite(m.get("best_val_acc")),
        test_acc=finite(test.get("accuracy")),
        epoch_time_s=finite(m.get("mean_epoch_time_s"))
        or (float(np.mean(times)) if times else None),
        params=int(m["params"]) if finite(m.get("params")) is not None else started.get("n_params"),
        peak_memory_bytes=peak_memory(run),
        synops=synops if spiking else None,
        macs=finite(m.get("macs")),
    )


def comparison_rows(runs: list[RunInfo]) -> list[ComparisonRow]:
    return [comparison_row(r) for r in runs]


def accuracy_curves(run: RunInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(epochs, train_acc, val_acc)`` of a run, as float arrays (NaN where unknown)."""
    h = run.history
    epochs = np.array([float(r.get("epoch", i + 1)) for i, r in enumerate(h)])
    train = np.array([finite_or(r.get("train_acc")) for r in h])
    val = np.array([finite_or(r.get("val_acc")) for r in h])
    return epochs, train, val
