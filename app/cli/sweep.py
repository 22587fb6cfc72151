"""``snn-explorer sweep``: an Optuna hyper-parameter sweep, each trial a normal run folder.

Drives :func:`engine.train.sweep.sweep`. Ctrl-C stops the running trial with a checkpoint and
queues it again; rerunning the same command continues the sweep (also after a kill). A second
Ctrl-C aborts.
"""

from __future__ import annotations

import math
import signal
import sys
import threading

from app.cli.interrupt import stop_on_ctrl_c


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="search hyper-parameters with Optuna; one run folder per trial",
        description="Run (or continue) an Optuna study over the run-config parameters named in "
        "SPACE.toml, starting from BASE.toml. Each trial is a run folder DIR/trial-NNNN; the "
        "study is stored in sqlite:///DIR/study.db unless --storage names another database. "
        "At the end: a table of trials, DIR/best.toml and parameter importances.",
    )
    p.add_argument("--config", required=True, metavar="BASE.toml", help="base run configuration")
    p.add_argument("--space", required=True, metavar="SPACE.toml", help="parameters and ranges")
    p.add_argument(
        "--trials", required=True, type=int, metavar="N", help="COMPLETE + PRUNED trials wanted"
    )
    p.add_argument("--jobs", type=int, default=1, metavar="J", help="parallel worker processes")
    p.add_argument(
        "--storage", metavar="URL", help="optuna storage, e.g. postgresql://user:pass@host/db"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="sweep folder")
    p.add_argument("--quiet", action="store_true", help="only the final table")
    p.set_defaults(func=run)


def run(args) -> int:
    import optuna

    from engine.errors import ConfigError
    from engine.train.config import load_config
    from engine.train.memory import keep_freed_memory
    from engine.train.sweep import (
        SweepFinished,
        SweepStarted,
        TrialEpoch,
        TrialFinished,
        TrialStarted,
        sweep,
    )
    from engine.train.sweep_space import load_space
    from engine.train.sweep_study import SweepSpec

    if args.trials < 1:
        raise ConfigError(f"--trials: {args.trials} must be at least 1")
    if args.jobs < 1:
        raise ConfigError(f"--jobs: {args.jobs} must be at least 1")
    try:  # a bad BASE.toml or SPACE.toml is a usage error: one line, exit code 2
        base = load_config(args.config)
        if not base.data:
            raise ConfigError(f"{args.config}: data = ... is required for a sweep")
        space = load_space(args.space, base)
    except ConfigError as exc:
        print(f"snn-explorer sweep: error: {exc}", file=sys.stderr)
        return 2
    spec = SweepSpec(base, space, args.out, args.storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    keep_freed_memory()
    stop = threading.Event()

    def say(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    previous = stop_on_ctrl_c(
        stop, say, "stopping the running trial(s) (checkpoint kept); Ctrl-C again to abort"
    )
    finished = None
    try:
        for ev in sweep(spec, args.trials, jobs=args.jobs, stop=stop):
            if isinstance(ev, SweepStarted):
                more = f", {ev.done} done" if ev.done else ""
                back = (
                    f"; trials {list(ev.recovered)} were left running: queued again"
                    if ev.recovered
                    else ""
                )
                say(f"sweep of {args.trials} trials in {ev.out} ({ev.storage}{more}){back}")
            elif isinstance(ev, TrialStarted):
                resumed = (
                    f" (resumes trial {ev.resumed_from})" if ev.resumed_from is not None else ""
                )
                say(f"trial {ev.number}{resumed}: {_params(ev.params)}")
            elif isinstance(ev, TrialEpoch):
                say(f"  trial {ev.number} epoch {ev.epoch}/{ev.epochs}: val acc {ev.val_acc:.4f}")
            elif isinstance(ev, TrialFinished):
                why = f" ({ev.message})" if ev.message and ev.state == "FAIL" else ""
                say(
                    f"trial {ev.number} {ev.state}: best val acc {_pct(ev.value)} in {ev.seconds:.1f} s{why}"
                )
                if ev.warning:
                    say(f"  trial {ev.number} warning: {ev.warning}")
            elif isinstance(ev, SweepFinished):
                finished = ev
    finally:
        signal.signal(signal.SIGINT, previous)
    if finished is None:
        return 1
    print_summary(finished.summary, finished.wall_s)
    return 0 if finished.status == "completed" else 130


def _pct(v) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _params(params: dict) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def print_summary(summary, wall_s: float) -> None:
    """The trials table, the best trial and the importances, on stdout."""
    keys = list(summary.keys)
    header = ["trial", "state", *keys, "val acc", "s"]
    rows = [
        [
            str(r.number),
            r.state,
            *(_fmt(r.params[k]) if k in r.params else "" for k in keys),
            _pct(r.value),
            "" if r.seconds is None else f"{r.seconds:.1f}",
        ]
        for r in summary.rows
    ]
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
        for i, h in enumerate(header)
    ]
    for line in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
    print(f"{summary.n_counted} trials complete or pruned; wall time {wall_s:.1f} s")
    if summary.best_number is not None:
        print(
            f"best: trial {summary.best_number}, val acc {_pct(summary.best_value)}: "
            f"{_params(summary.best_params)}; config {summary.out}/best.toml"
        )
    if summary.importances:
        print("importances: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.importances.items()))
    elif summary.importance_note:
        print(f"importances: {summary.importance_note}")
