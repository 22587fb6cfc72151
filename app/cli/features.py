"""``snn-explorer features --data SPEC``: featurise a data set into the on-disk cache.

Drives :func:`engine.data.feature_set.build_feature_set` (the same generator the Data tab runs) with a
text progress bar on stderr. A second run reads the cache; changed parameters or files are
recomputed. ``--out FILE.npz`` also saves the whole feature set.
"""

from __future__ import annotations

import sys
import threading
import time


def add_feature_args(p) -> None:
    """The FeatureConfig options (shared by any command that featurises)."""
    from engine.audio.features import KINDS, NORMALISE

    g = p.add_argument_group("features (defaults suit FSDD: 8 kHz speech, 1 s clips)")
    kinds = [k for k in KINDS if k != "image"]
    g.add_argument("--kind", choices=kinds, help=" or ".join([", ".join(kinds[:-1]), kinds[-1]]))
    g.add_argument("--sample-rate", type=int, metavar="HZ")
    g.add_argument("--duration", type=float, metavar="S", help="clip length in seconds")
    g.add_argument("--align", choices=["pad", "trim", "centre"], help="where a clip sits in it")
    g.add_argument("--trim-silence", action="store_true", default=None)
    g.add_argument("--n-mfcc", type=int, metavar="N")
    g.add_argument("--n-fft", type=int, metavar="N")
    g.add_argument("--hop-length", type=int, metavar="N")
    g.add_argument("--n-mels", type=int, metavar="N")
    g.add_argument("--fmin", type=float, metavar="HZ")
    g.add_argument("--fmax", type=float, metavar="HZ")
    g.add_argument("--htk", action="store_true", default=None, help="HTK mel scale")
    g.add_argument("--top-db", type=float, metavar="DB")
    g.add_argument("--normalise", choices=NORMALISE)


def feature_config_from_args(args, base=None):
    """``base`` (default FeatureConfig()) with the options given on the command line."""
    from engine.audio.features import FeatureConfig

    d = (base or FeatureConfig()).to_dict()
    for name in (
        "kind", "sample_rate", "duration", "align", "trim_silence", "n_mfcc", "n_fft",
        "hop_length", "n_mels", "fmin", "fmax", "htk", "top_db", "normalise",
    ):  # fmt: skip
        value = getattr(args, name, None)
        if value is not None:
            d[name] = value
    return FeatureConfig.from_dict(d)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "features",
        help="compute a data set's features into the cache, with a progress bar",
        description="Featurise a data set (MFCC or log-mel) into the on-disk cache, using "
        "every core. Interrupt with Ctrl-C: finished clips stay cached.",
    )
    p.add_argument(
        "--data", required=True, metavar="SPEC", help="e.g. fsdd:../shared/data/fsdd/recordings"
    )
    add_feature_args(p)
    g = p.add_argument_group("augmentation (extra copies of training clips)")
    g.add_argument("--copies", type=int, default=0, metavar="N", help="augmented copies per clip")
    g.add_argument("--time-shift", type=float, default=0.0, metavar="S")
    g.add_argument("--gain-db", type=float, default=0.0, metavar="DB")
    g.add_argument("--noise-snr", type=float, default=None, metavar="DB")
    g.add_argument("--background-dir", default=None, metavar="DIR")
    g.add_argument("--background-snr", type=float, default=10.0, metavar="DB")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--jobs", type=int, default=None, metavar="N", help="workers (default: every core)"
    )
    p.add_argument(
        "--cache-dir", default=None, metavar="DIR", help="cache root (default: user cache)"
    )
    p.add_argument("--no-cache", action="store_true", help="recompute everything, write nothing")
    p.add_argument("--out", default=None, metavar="FILE.npz", help="also save the feature set")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _bar(ev, width: int = 30) -> str:
    frac = ev.fraction
    filled = int(round(frac * width))
    rate = ev.done / ev.elapsed if ev.elapsed > 0 else 0.0
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {ev.done}/{ev.total} clips "
        f"({ev.cached} cached, {ev.failed} failed) {ev.elapsed:5.1f}s {rate:6.0f} clips/s"
    )


def run(args) -> int:
    from engine.audio.augment import AugmentConfig
    from engine.data.feature_set import build_feature_set

    cfg = feature_config_from_args(args)
    augment = AugmentConfig(
        time_shift_s=args.time_shift,
        gain_db=args.gain_db,
        noise_snr_db=args.noise_snr,
        background_dir=args.background_dir,
        background_snr_db=args.background_snr,
        copies=args.copies,
    )
    stop = threading.Event()
    gen = build_feature_set(
        args.data,
        cfg,
        seed=args.seed,
        augment=augment,
        jobs=args.jobs,
        cache_dir=args.cache_dir,
        stop=stop,
        use_cache=not args.no_cache,
    )
    tty = sys.stderr.isatty()
    last_print, last_tenth, result, ev = 0.0, -1, None, None
    if not args.quiet:
        print(f"features: {cfg.describe()}", file=sys.stderr)
    try:
        while True:
            try:
                ev = next(gen)
            except StopIteration as done:
                result = done.value
                break
            if args.quiet or ev.total == 0:
                continue
            now = time.monotonic()
            tenth = int(ev.fraction * 10)
            if tty and (now - last_print > 0.1 or ev.phase == "done"):
                print("\r" + _bar(ev), end="", file=sys.stderr, flush=True)
                last_print = now
            elif not tty and tenth != last_tenth:
                print(_bar(ev), file=sys.stderr, flush=True)
                last_tenth = tenth
    except KeyboardInterrupt:
        stop.set()
        gen.close()
        print("\nfeatures: stopped; finished clips are cached", file=sys.stderr)
        return 130
    if tty and not args.quiet:
        print(file=sys.stderr)
    if result is None:
        print("features: stopped", file=sys.stderr)
        return 130
    for path, reason in result.skipped[:20]:
        print(f"skipped: {path}: {reason}", file=sys.stderr)
    if len(result.skipped) > 20:
        print(f"skipped: ... and {len(result.skipped) - 20} more", file=sys.stderr)
    sizes = {k: len(v) for k, v in result.splits.items()}
    print(
        f"{result.spec}: {result.x.shape[0]} examples x {result.x.shape[1:]} "
        f"(train {sizes['train']}, val {sizes['val']}, test {sizes['test']}), "
        f"{ev.cached if ev else 0} from the cache, {len(result.skipped)} skipped, "
        f"{ev.elapsed if ev else 0:.2f} s"
    )
    if args.out:
        _save(result, args.out)
        print(f"saved {args.out}")
    return 0


def _save(fs, path: str) -> None:
    import json

    import numpy as np

    from engine.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: no ".npz" appended
        np.savez_compressed(
            fh,
            x=fs.x,
            y=fs.y,
            train=fs.splits["train"],
            val=fs.splits["val"],
            test=fs.splits["test"],
            class_names=np.array(fs.class_names),
            feature_config=np.array(json.dumps(fs.feature_config.to_dict())),
            spec=np.array(fs.spec),
        )
