"""``snn-explorer train --cv K``: one run per fold in RUN_DIR/fold-<k>, then a summary table.

Drives :func:`engine.train.cross_validation.cross_validate`; Ctrl-C stops after the current
batch (the fold's checkpoint is kept; the cross-validation is not resumable as a whole).
"""

from __future__ import annotations

import signal
import sys
import threading

from app.cli.interrupt import stop_on_ctrl_c


def run_cv(cfg, args) -> int:
    from engine.train.cross_validation import FoldStarted, cross_validate, parse_cv, summary_lines
    from engine.train.events import EpochEnd, Preparing, RunFinished
    from engine.train.memory import keep_freed_memory

    cv = parse_cv(args.cv)
    keep_freed_memory()
    stop = threading.Event()

    def say(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    previous = stop_on_ctrl_c(stop, say, "stopping after this batch; Ctrl-C again to abort")
    summary = None
    try:
        gen = cross_validate(cfg, args.out, cv, stop=stop)
        while True:
            try:
                ev = next(gen)
            except StopIteration as done:
                summary = done.value
                break
            if isinstance(ev, Preparing) and ev.total and ev.done in (0, ev.total):
                say(f"{ev.message}: {ev.done}/{ev.total}")
            elif isinstance(ev, FoldStarted):
                say(
                    f"fold {ev.fold}/{ev.folds} (test {ev.name}): {ev.n_train} train, "
                    f"{ev.n_val} val, {ev.n_test} test -> {ev.run_dir}"
                )
            elif isinstance(ev, EpochEnd):
                say(
                    f"  epoch {ev.epoch}/{ev.epochs}: loss {ev.train_loss:.4f} acc "
                    f"{ev.train_acc:.4f} | val acc {ev.val_acc:.4f} | {ev.epoch_time_s:.1f} s"
                )
            elif isinstance(ev, RunFinished):
                say(f"  {ev.status}: test acc {ev.test_acc:.4f} in {ev.total_time_s:.1f} s")
    finally:
        signal.signal(signal.SIGINT, previous)
    if summary is None:
        print(f"stopped: cross-validation in {args.out} is incomplete")
        return 130
    print("\n".join(summary_lines(summary)))
    print(f"summary written to {args.out}/cv_summary.json")
    return 0
