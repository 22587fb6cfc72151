"""``snn-explorer train``: train a model headless, with a text progress bar on stderr.

Drives :func:`engine.train.recorded_run.train_recorded` (the same generator the Training tab
runs, so the run folder gets the same traces, steps.csv and metrics.csv). Ctrl-C asks the
run to stop: it writes a checkpoint and ends; ``--resume`` continues it. A second Ctrl-C aborts.
"""

from __future__ import annotations

import math
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

from app.cli.interrupt import stop_on_ctrl_c
from app.cli.train_cv import run_cv
from engine.errors import ConfigError

OVERRIDES = (
    "data",
    "model",
    "steps",
    "epochs",
    "encoder",
    "surrogate",
    "loss",
    "lr",
    "batch",
    "device",
    "seed",
    "limit",
    "patience",
    "sync_bn",
)


def add_parser(sub) -> None:
    from engine.models.names import MODEL_NAMES as MODELS
    from engine.neuro.surrogate import SURROGATES
    from engine.train.config import ENCODERS, LOSSES

    p = sub.add_parser(
        "train",
        help="train a model on a data set; writes a run folder",
        description="Train a spiking or conventional model and write RUN_DIR (config.toml, "
        "checkpoint.pt, best.pt, metrics.json, metrics.csv, steps.csv, events.jsonl, log.txt, "
        "traces.npz, usage.json; see docs/file-formats.md). Options given here override the "
        "--config file.",
    )
    p.add_argument("--data", help="data set spec, e.g. fsdd:../shared/data/fsdd/recordings")
    p.add_argument("--model", choices=MODELS, metavar="NAME", help=f"one of {', '.join(MODELS)}")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to write")
    p.add_argument("--config", metavar="FILE.toml", help="run configuration (TOML)")
    p.add_argument("--steps", type=int, metavar="T", help="time steps (spiking models)")
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--encoder", choices=ENCODERS)
    p.add_argument("--surrogate", choices=SURROGATES)
    p.add_argument("--loss", choices=LOSSES)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch", type=int)
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int)
    p.add_argument("--limit", type=int, metavar="N", help="use a random slice of about N examples")
    p.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="early stop after N epochs with neither a better val accuracy nor a lower val loss",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    p.add_argument(
        "--recipe",
        choices=("auto", "on", "off"),
        default="auto",
        help="small-data recipe (docs/recipe.md) for the settings not given: auto = on "
        "unless --config or --resume",
    )
    p.add_argument(
        "--twin", action="store_true", help="train the model's non-spiking twin, all else equal"
    )
    p.add_argument(
        "--cv",
        metavar="K",
        help="cross-validate: K folds (a manifest's fold column when it has one), 'folds', or "
        "'speakers' (leave one speaker/group out); RUN_DIR/fold-1.. and cv_summary.json",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train in N processes (data parallel, through torch.distributed.run; one per GPU "
        "on CUDA); docs/gpu-and-distributed.md",
    )
    p.add_argument(
        "--sync-bn",
        action="store_true",
        default=None,
        help="with --nproc on CUDA: batch-norm statistics over the global batch",
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard event files to RUN_DIR/tb (needs the tensorboard package)",
    )
    p.set_defaults(func=run)


def _config(args):
    from engine.errors import ConfigError
    from engine.train.config import RunConfig, load_config
    from engine.train.run_folder import CONFIG_FILE

    out = Path(args.out)
    if args.config:
        cfg = load_config(args.config)
    elif args.resume and (out / CONFIG_FILE).exists():
        cfg = load_config(out / CONFIG_FILE)
    else:
        cfg = RunConfig()
    cfg = cfg.replace(**{k: getattr(args, k) for k in OVERRIDES})
    if not args.resume and not cfg.data:
        raise ConfigError("--data is required (or a --config file with data = ...)")
    return _with_recipe(cfg, args)


def _with_recipe(cfg, args):
    """The small-data recipe for every setting the options and config file leave unset."""
    from engine.train.recipe import apply_recipe, with_recipe

    use = args.recipe == "on" or (args.recipe == "auto" and not args.config and not args.resume)
    if args.resume or not use:
        return with_recipe(cfg, None, twin=args.twin and not args.resume)
    from engine.data.specs import open_source

    explicit = {k for k in OVERRIDES if getattr(args, k) is not None}
    if args.config:  # keys the file sets are the user's (load_config has checked it already)
        from engine.train.config import tomllib

        with open(args.config, "rb") as fh:
            explicit |= set(tomllib.load(fh))
    cfg, recipe = apply_recipe(cfg, open_source(cfg.data), explicit, twin=args.twin)
    if recipe is not None and not args.quiet and _speaks():
        lines = list(recipe.reasons)
        if args.twin:
            lines.append(f"training the non-spiking twin {cfg.model}, all else equal")
        kept = _kept_as_set(cfg, explicit)
        if kept:
            lines.append("kept as you set them (they win over the above): " + kept)
        print("recipe: " + "\n        ".join(lines), file=sys.stderr)
    return cfg


def _speaks() -> bool:
    """True in a one-process run and in rank 0 of a job: what is said once per job."""
    from engine.train.distributed import env_group

    group = env_group()
    return group is None or group.rank == 0


def _kept_as_set(cfg, explicit) -> str:
    """``model = cnn, epochs = 5``: the recipe's settings the user gave, with their values."""
    from engine.train.recipe import RECIPE_KEYS

    out = []
    for key in sorted(explicit):
        top, _, sub = key.partition(".")
        if top not in RECIPE_KEYS:
            continue
        value = getattr(cfg, top)
        if sub:
            value = value.get(sub) if isinstance(value, dict) else None
        out.append(key if isinstance(value, dict) else f"{key} = {value}")
    return ", ".join(out)


class _Bar:
    """One-line progress bar on a terminal; one line per epoch otherwise."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.start_epoch = 0

    def started(self, start_epoch: int) -> None:
        """Training (not feature extraction) starts now: the ETA counts from here."""
        self.t0 = time.perf_counter()
        self.start_epoch = start_epoch

    def step(self, ev, epochs: int) -> None:
        if self.quiet or not self.tty:
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and ev.step != ev.steps_per_epoch:
            return
        self.last = now
        frac = ev.step / ev.steps_per_epoch
        width = 24
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        done = (ev.epoch - 1 - self.start_epoch + frac) / max(epochs - self.start_epoch, 1)
        elapsed = now - self.t0
        eta = elapsed / done * (1 - done) if done > 0 else math.nan
        sys.stderr.write(
            f"\repoch {ev.epoch}/{epochs} [{bar}] {ev.step}/{ev.steps_per_epoch} "
            f"loss {ev.loss:.3f} acc {ev.accuracy:.2f} {ev.samples_per_s:.0f}/s "
            f"ETA {_clock(eta)}  "
        )
        sys.stderr.flush()

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.tty:
            sys.stderr.write("\r\033[K")
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _clock(s: float) -> str:
    if not math.isfinite(s):
        return "--:--"
    s = int(s)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def run(args) -> int:
    from engine.train.distributed import env_group, train_distributed
    from engine.train.events import (
        Checkpointed,
        EpochEnd,
        Preparing,
        RunFinished,
        RunStarted,
        StepEnd,
    )
    from engine.train.launcher import guard_rank
    from engine.train.memory import keep_freed_memory
    from engine.train.recorded_run import train_recorded

    if env_group() is not None:
        guard_rank()  # a rank: first of all, never outlive the launcher
    elif args.nproc > 1:
        return _relaunch(args.argv, args.nproc)

    cfg = _config(args)
    if args.cv:
        if args.resume:
            raise ConfigError("--cv cannot --resume; start the cross-validation in a new folder")
        return run_cv(cfg, args)
    keep_freed_memory()  # an entry point that trains: reuse freed pages (engine.train.memory)
    stop = threading.Event()
    bar = _Bar(args.quiet)

    previous = stop_on_ctrl_c(
        stop,
        bar.line if _speaks() else (lambda _line: None),
        "stopping after this batch (checkpoint kept); Ctrl-C again to abort",
    )
    epochs = cfg.epochs
    result = None
    try:
        gen = train_distributed(
            train_recorded,
            cfg,
            args.out,
            resume=args.resume,
            stop=stop,
            tensorboard=args.tensorboard,
        )
        while True:
            try:
                ev = next(gen)
            except StopIteration as done:
                result = done.value
                break
            if isinstance(ev, StepEnd):
                bar.step(ev, epochs)
            elif isinstance(ev, Preparing) and ev.total:
                if ev.done in (0, ev.total):
                    bar.line(f"{ev.message}: {ev.done}/{ev.total}")
            elif isinstance(ev, RunStarted):
                epochs = ev.epochs
                bar.started(ev.start_epoch)
                bar.line(
                    f"{'resuming' if ev.resumed else 'training'} {ev.model} "
                    f"({ev.n_params:,} parameters) on {ev.device}: {ev.n_train} train, "
                    f"{ev.n_val} val, {ev.n_test} test examples, {ev.epochs} epochs"
                )
            elif isinstance(ev, EpochEnd):
                bar.line(
                    f"epoch {ev.epoch}/{ev.epochs}: loss {ev.train_loss:.4f} acc "
                    f"{ev.train_acc:.4f} | val loss {ev.val_loss:.4f} acc {ev.val_acc:.4f}"
                    f"{' *' if ev.is_best else ''} | {ev.epoch_time_s:.1f} s"
                )
            elif isinstance(ev, Checkpointed) and ev.reason == "stop":
                bar.line(f"checkpoint written: {ev.path} (resume with --resume)")
            elif isinstance(ev, RunFinished):
                _summary(ev)
    finally:
        signal.signal(signal.SIGINT, previous)
    return 0 if result is not None and result.status != "stopped" else 130


def _relaunch(argv: list[str], nproc: int) -> int:
    """Run this same command in ``nproc`` processes: torchrun's agent in this process (its ranks
    die with it, engine.train.launcher). Ctrl-C, SIGTERM or SIGHUP stop every rank (a rank stops
    after its batch on SIGINT, keeping the checkpoint) and end with one line."""
    from engine.train.distributed import torchrun_args
    from engine.train.launcher import run_torchrun

    argv = argv[argv.index("train") + 1 :]
    keep, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            keep.append(a)
    code = run_torchrun(torchrun_args(keep, nproc))
    if code - 128 in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        resume = [a for a in keep if a != "--resume"] + ["--resume", "--nproc", str(nproc)]
        name = signal.Signals(code - 128).name
        again = shlex.join(["snn-explorer", "train", *resume])
        print(f"snn-explorer train: stopped by {name}; resume with: {again}", file=sys.stderr)
    elif code > 1:  # 1: a rank's error, already said in one line by rank 0
        print(
            f"snn-explorer train: the job in {nproc} processes failed (exit code {code})",
            file=sys.stderr,
        )
    return code


def _summary(ev) -> None:
    if math.isnan(ev.test_acc):
        print(f"{ev.status}: {ev.epochs_done} epochs, run folder {ev.run_dir}")
        return
    print(
        f"{ev.status}: {ev.epochs_done} epochs in {ev.total_time_s:.1f} s; best val acc "
        f"{ev.best_val_acc:.4f} (epoch {ev.best_epoch}); test acc {ev.test_acc:.4f}; "
        f"run folder {ev.run_dir}"
    )
    if ev.warning:
        print(f"warning: {ev.warning}")
