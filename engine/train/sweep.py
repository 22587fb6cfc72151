"""Hyper-parameter sweeps: a Qt-free generator the CLI and the GUI both drive.

``sweep(spec, n_trials, jobs=1, stop=None)`` runs an Optuna study (see
:mod:`engine.train.sweep_study`) until ``n_trials`` trials are COMPLETE or PRUNED. Each trial is
a normal run folder ``DIR/trial-NNNN/`` written by :func:`engine.train.recorded_run.train_recorded`
(so the Training tab opens it); its objective is the best validation accuracy over its epochs,
reported each epoch so that the median pruner can stop a poor trial early (its run folder then
ends "stopped", with a checkpoint). Rerunning the same sweep continues it: trials left RUNNING by
a killed process are failed and queued again, and a queued trial whose folder holds a checkpoint
resumes it. With ``jobs > 1`` the trials run in that many worker processes sharing the study
(:mod:`engine.train.sweep_jobs`); the generator then reports what the study records.

Events (:mod:`engine.train.sweep_events`): ``SweepStarted``, then per trial ``TrialStarted``, ``TrialEpoch``*, ``TrialFinished``,
and the generator returns (and yields) a ``SweepFinished`` with the summary.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path

from engine.errors import SnnError
from engine.train.events import EpochEnd, StepEnd
from engine.train.run_folder import CHECKPOINT_FILE
from engine.train.sweep_events import (
    SweepEvent,
    SweepFinished,
    SweepStarted,
    TrialEpoch,
    TrialFinished,
    TrialStarted,
)
from engine.train.sweep_jobs import run_workers
from engine.train.sweep_space import SpaceParam, apply_params
from engine.train.sweep_study import (
    SweepSpec,
    counted,
    open_study,
    read_spec,
    recover_stale,
    summarise,
    worker_tag,
)

log = logging.getLogger(__name__)
MAX_FAILS_IN_A_ROW = 3


def sweep(
    spec: SweepSpec,
    n_trials: int,
    *,
    jobs: int = 1,
    stop: threading.Event | None = None,
    data=None,
) -> Generator[SweepEvent, None, SweepFinished]:
    """Run (or continue) the sweep until ``n_trials`` trials are COMPLETE or PRUNED.

    ``data`` may pass a ready FeatureSet to every trial (in-process only, ``jobs == 1``).
    """
    if n_trials < 1:
        from engine.errors import ConfigError

        raise ConfigError(f"--trials: {n_trials} must be at least 1")
    stop = stop or threading.Event()
    t0 = time.perf_counter()
    spec = spec.save(n_trials)
    study, storage = open_study(spec, sampler_seed=spec.base.seed)
    recovered = tuple(recover_stale(study, storage))
    yield SweepStarted(spec.out, spec.url, n_trials, counted(study, running=False), jobs, recovered)
    if jobs > 1:
        yield from run_workers(spec, n_trials, jobs, stop, study)
        recover_stale(study, storage)
    else:
        yield from run_trials(spec, n_trials, stop, data=data, study=study, storage=storage)
    status = "stopped" if stop.is_set() else "completed"
    done = SweepFinished(status, summarise(study, spec), time.perf_counter() - t0)
    yield done
    return done


def run_trials(spec: SweepSpec, n_trials: int, stop, data=None, study=None, storage=None):
    """This process's share of the trials (a worker's loop); yields the trial events."""
    if study is None:
        seed = (spec.base.seed * 7919 + os.getpid()) % 2**32
        study, storage = open_study(spec, sampler_seed=seed)
    fails = 0
    while not stop.is_set():
        recover_stale(study, storage)
        if counted(study) >= n_trials:
            break
        trial = study.ask()
        if _surplus(study, trial.number, n_trials):
            # another worker asked at the same moment: give this number back unused
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=_state("FAIL"))
            break
        finished = yield from _run_trial(study, storage, spec, trial, stop, data)
        fails = fails + 1 if finished.state == "FAIL" and not stop.is_set() else 0
        if fails >= MAX_FAILS_IN_A_ROW:
            raise SnnError(f"{MAX_FAILS_IN_A_ROW} trials failed in a row; last: {finished.message}")


def _state(name: str):
    from optuna.trial import TrialState

    return TrialState[name]


def _surplus(study, number: int, n_trials: int) -> bool:
    ahead = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number < number and t.state.name in ("COMPLETE", "PRUNED", "RUNNING")
    ]
    return len(ahead) >= n_trials


def suggest(trial, space: tuple[SpaceParam, ...]) -> dict:
    """The trial's value of each parameter (fixed ones for a queued retry)."""
    params = {}
    for p in space:
        if p.choices:
            params[p.key] = trial.suggest_categorical(p.key, list(p.choices))
        elif p.is_int:
            params[p.key] = trial.suggest_int(p.key, p.low, p.high, step=p.step or 1, log=p.log)
        else:
            params[p.key] = trial.suggest_float(p.key, p.low, p.high, step=p.step, log=p.log)
    return params


def trial_dir(out: str | os.PathLike, number: int) -> Path:
    return Path(out) / f"trial-{number:04d}"


class _Heartbeat:
    """Records the trial's heartbeat every ``interval`` seconds on a daemon thread."""

    def __init__(self, storage, trial_id: int, interval: float):
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(storage, trial_id, interval), daemon=True
        )
        self._thread.start()

    def _beat(self, storage, trial_id, interval):
        while True:
            try:
                storage.record_heartbeat(trial_id)
            except Exception as exc:  # noqa: BLE001 - a missed beat must not end the trial
                log.warning("sweep heartbeat: %s", exc)
            if self._done.wait(interval):
                return

    def close(self):
        self._done.set()
        self._thread.join(timeout=5)


def _run_trial(study, storage, spec: SweepSpec, trial, stop, data):
    from engine.train.recorded_run import train_recorded
    from engine.train.sweep_study import HEARTBEAT_S

    t0 = time.perf_counter()
    number = trial.number
    trial.set_user_attr("worker", worker_tag(number))
    run = trial_dir(spec.out, number)
    trial.set_user_attr("run_dir", run.name)
    beat = _Heartbeat(storage, trial._trial_id, HEARTBEAT_S)
    params: dict = {}
    state, message, values = "FAIL", "", []
    result = None
    trial_stop = threading.Event()
    try:
        params = suggest(trial, spec.space)
        cfg = apply_params(spec.base, params, source=f"trial {number}")
        frozen = storage.get_trial(trial._trial_id)
        history = frozen.system_attrs.get("retry_history") or []
        retry_of = int(history[-1]) if history else None
        resume = _take_over(spec.out, retry_of, run)
        values = [v for v in frozen.intermediate_values.values() if math.isfinite(v)]
        yield TrialStarted(number, params, str(run), retry_of if resume else None)
        gen = train_recorded(cfg, run, resume=resume, stop=trial_stop, data=data)
        pruned = False
        while True:
            try:
                ev = next(gen)
            except StopIteration as end:
                result = end.value
                break
            if isinstance(ev, StepEnd) and stop.is_set():
                trial_stop.set()
            elif isinstance(ev, EpochEnd):
                values.append(ev.val_acc)
                trial.report(ev.val_acc, ev.epoch)
                yield TrialEpoch(number, ev.epoch, ev.epochs, ev.val_acc, ev.train_acc)
                if stop.is_set():
                    trial_stop.set()
                elif ev.epoch < ev.epochs and trial.should_prune():
                    pruned = True
                    trial_stop.set()
        if pruned:
            state = "PRUNED"
        elif result is not None and result.status != "stopped":
            state = "COMPLETE"
        else:
            message = "stopped"
    except SnnError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001 - a failed trial is recorded; the sweep goes on
        log.exception("sweep: trial %d failed", number)
        message = f"{type(exc).__name__}: {exc}"
    finally:
        beat.close()
    value = max(values) if values else None
    warning = (result.metrics.get("warning") or "") if state == "COMPLETE" and result else ""
    if message:
        trial.set_user_attr("error", message)
    if warning:
        trial.set_user_attr("warning", warning)
    if state == "COMPLETE" and value is not None:
        study.tell(trial, value)
    elif state == "PRUNED":
        study.tell(trial, state=_state("PRUNED"))
    else:
        state = "FAIL"
        study.tell(trial, state=_state("FAIL"))
        if message == "stopped":  # asked to stop: queue it again, resumed from its checkpoint
            storage.get_heartbeat_stale_trial_callback()(study, storage.get_trial(trial._trial_id))
    finished = TrialFinished(
        number, state, value, params, time.perf_counter() - t0, str(run), message, warning
    )
    yield finished
    return finished


def _take_over(out: str, retry_of: int | None, run: Path) -> bool:
    """Move a failed trial's run folder (with its checkpoint) to ``run``; True to resume it."""
    if retry_of is None or run.exists():
        return False
    old = trial_dir(out, retry_of)
    if not (old / CHECKPOINT_FILE).is_file():
        return False
    os.replace(old, run)
    return True


def main(argv: list[str] | None = None) -> int:
    """A worker process of :mod:`engine.train.sweep_jobs` (``python -m engine.train.sweep DIR N``):
    run trials of the sweep in DIR until N count; SIGINT stops it."""
    argv = sys.argv[1:] if argv is None else argv
    out, n_trials = argv[0], int(argv[1])
    import torch

    torch.set_num_threads(1)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        spec = read_spec(out)
        for ev in run_trials(spec, n_trials, stop):
            log.info("%s", ev)
    except SnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 130 if stop.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
