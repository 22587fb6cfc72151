"""A sweep in several processes: worker processes share the study; the parent watches it.

``run_workers`` starts ``jobs`` processes of ``python -m engine.train.sweep DIR N`` (one torch
thread each), each running ``engine.train.sweep.run_trials`` on the shared study, and yields
the trial events it reads back from the study once a second. A stop request sends each worker
SIGINT: its trial stops with a checkpoint and is queued again for the next run. Each worker's
log goes to ``DIR/worker-K.log``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from engine.errors import SnnError
from engine.train.sweep_events import TrialEpoch, TrialFinished, TrialStarted
from engine.train.sweep_study import SweepSpec

log = logging.getLogger(__name__)
POLL_S = 1.0


def worker_command(out: str, n_trials: int) -> list[str]:
    return [sys.executable, "-m", "engine.train.sweep", str(out), str(n_trials)]


def _root() -> str:
    return str(Path(__file__).resolve().parents[2])  # so ``-m engine...`` imports this checkout


def run_workers(spec: SweepSpec, n_trials: int, jobs: int, stop: threading.Event, study):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([_root(), os.environ.get("PYTHONPATH", "")]).strip(
            os.pathsep
        ),
    }
    procs, logs = [], []
    for k in range(jobs):
        fh = open(Path(spec.out) / f"worker-{k}.log", "ab")  # noqa: SIM115 - closed below
        logs.append(fh)
        procs.append(
            subprocess.Popen(
                worker_command(spec.out, n_trials), stdout=fh, stderr=subprocess.STDOUT, env=env
            )
        )
    seen: dict[int, tuple[str, int]] = {}  # number -> (state, epochs reported)
    signalled = False
    try:
        while True:
            if stop.is_set() and not signalled:
                for p in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGINT)
                signalled = True
            running = any(p.poll() is None for p in procs)
            for t in study.get_trials(deepcopy=False):
                if t.state.name == "WAITING":
                    continue
                state, reported = seen.get(t.number, ("", 0))
                run_dir = str(Path(spec.out) / t.user_attrs.get("run_dir", ""))
                if not state:
                    if t.user_attrs.get("surplus"):
                        seen[t.number] = (t.state.name, 0)
                        continue
                    yield TrialStarted(t.number, dict(t.params), run_dir, None)
                steps = sorted(t.intermediate_values)
                for epoch in steps[reported:]:
                    epochs = int(spec.base.epochs)
                    val = t.intermediate_values[epoch]
                    yield TrialEpoch(t.number, int(epoch), epochs, val, float("nan"))
                seen[t.number] = (t.state.name, len(steps))
                if t.state.name != "RUNNING" and state in ("", "RUNNING"):
                    vals = list(t.intermediate_values.values())
                    value = t.value if t.value is not None else (max(vals) if vals else None)
                    seconds = (
                        (t.datetime_complete - t.datetime_start).total_seconds()
                        if t.datetime_complete and t.datetime_start
                        else 0.0
                    )
                    message = str(t.user_attrs.get("error", ""))
                    yield TrialFinished(
                        t.number, t.state.name, value, dict(t.params), seconds, run_dir, message
                    )
            if not running:
                break
            stop.wait(POLL_S) if not signalled else time.sleep(POLL_S)
    finally:
        for p in procs:
            if p.poll() is None and not stop.is_set():
                p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for fh in logs:
            fh.close()
    bad = [k for k, p in enumerate(procs) if p.returncode not in (0, 130)]
    if bad and not stop.is_set():
        last = _last_line(Path(spec.out) / f"worker-{bad[0]}.log")
        raise SnnError(f"sweep worker {bad[0]} failed: {last}")


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"
