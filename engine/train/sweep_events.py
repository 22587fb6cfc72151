"""Events of a sweep (:func:`engine.train.sweep.sweep`): frozen dataclasses of plain values.

Order: ``SweepStarted``, then per trial ``TrialStarted``, ``TrialEpoch``*, ``TrialFinished``
(trials of several workers interleave), and ``SweepFinished`` with the summary.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.train.sweep_study import SweepSummary


@dataclass(frozen=True)
class SweepStarted:
    out: str
    storage: str
    n_trials: int
    done: int  # trials already COMPLETE or PRUNED (a continued sweep)
    jobs: int
    recovered: tuple[int, ...]  # trials found left RUNNING by a killed process


@dataclass(frozen=True)
class TrialStarted:
    number: int
    params: dict
    run_dir: str
    resumed_from: int | None  # the failed trial whose run folder this one continues


@dataclass(frozen=True)
class TrialEpoch:
    number: int
    epoch: int
    epochs: int
    val_acc: float
    train_acc: float


@dataclass(frozen=True)
class TrialFinished:
    number: int
    state: str  # COMPLETE, PRUNED or FAIL
    value: float | None  # best validation accuracy
    params: dict
    seconds: float
    run_dir: str
    message: str = ""  # why it failed
    warning: str = ""  # the trained model is no better than chance (engine.train.chance)


@dataclass(frozen=True)
class SweepFinished:
    status: str  # "completed" or "stopped"
    summary: SweepSummary
    wall_s: float


SweepEvent = SweepStarted | TrialStarted | TrialEpoch | TrialFinished | SweepFinished
