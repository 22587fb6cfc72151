"""Reading cross-validation folders: ``DIR/fold-1`` ... ``DIR/fold-K`` (normal run folders) and
``DIR/cv_summary.json`` (written by :mod:`engine.train.cross_validation` when every fold is done).

The Training tab's runs table shows such a folder as one row: the mean over its folds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import DataError
from engine.train.run_folder import (
    CV_SUMMARY_FILE,
    ComparisonRow,
    RunInfo,
    comparison_row,
    is_run_dir,
    read_json,
    read_run,
)

FOLD_PREFIX = "fold-"


@dataclass(frozen=True)
class CVInfo:
    """A cross-validation folder: its fold runs (in fold order) and summary ({} while running)."""

    path: str
    name: str
    folds: tuple[RunInfo, ...]
    summary: dict


def is_cv_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p / CV_SUMMARY_FILE).is_file() or is_run_dir(p / f"{FOLD_PREFIX}1")


def read_cv(path: str | os.PathLike) -> CVInfo:
    """Read a cross-validation folder (DataError naming it when it is not one)."""
    p = Path(path)
    if not is_cv_dir(p):
        raise DataError(f"{p}: not a cross-validation folder (no {CV_SUMMARY_FILE} or fold-1)")
    folds = []
    k = 1
    while is_run_dir(p / f"{FOLD_PREFIX}{k}"):
        try:
            folds.append(read_run(p / f"{FOLD_PREFIX}{k}"))
        except DataError:
            pass  # a damaged fold is left out of the mean
        k += 1
    return CVInfo(str(p), p.name, tuple(folds), read_json(p / CV_SUMMARY_FILE))


def list_cvs(folder: str | os.PathLike) -> list[CVInfo]:
    """Every cross-validation folder directly inside ``folder``, by name."""
    root = Path(folder)
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and not is_run_dir(d) and is_cv_dir(d):
            try:
                out.append(read_cv(d))
            except DataError:
                continue
    return out


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def cv_row(cv: CVInfo) -> ComparisonRow | None:
    """One comparison row for the whole cross-validation: means over the folds done."""
    rows = [comparison_row(r) for r in cv.folds]
    if not rows:
        return None
    total = len(cv.summary.get("folds") or []) or len(rows)
    tests = [r.test_acc for r in rows if r.test_acc is not None]
    sd = float(np.std(tests, ddof=1)) if len(tests) > 1 else 0.0
    done = sum(r.status in ("completed", "early_stopped") for r in rows)
    status = "cv done" if cv.summary else f"cv {done}/{total}"
    first = rows[0]
    return ComparisonRow(
        name=f"{cv.name} ({len(tests)}-fold mean, sd {100 * sd:.1f})",
        path=cv.path,
        model=first.model,
        spiking=first.spiking,
        status=status,
        epochs_done=int(round(np.mean([r.epochs_done for r in rows]))),
        best_val_acc=_mean(r.best_val_acc for r in rows),
        test_acc=_mean(tests),
        epoch_time_s=_mean(r.epoch_time_s for r in rows),
        params=first.params,
        peak_memory_bytes=max((r.peak_memory_bytes or 0 for r in rows), default=None) or None,
        synops=_mean(r.synops for r in rows),
        macs=_mean(r.macs for r in rows),
    )
