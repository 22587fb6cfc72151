"""``snn-explorer dataset audioset``: select AudioSet classes, preview the counts, download the clips.

Examples::

    snn-explorer dataset audioset --ontology ontology.json --segments eval_segments.csv \\
        --segments balanced_train_segments.csv --out data/audioset --preview
    snn-explorer dataset audioset ... --out data/audioset --download --jobs 8 --sample-rate 16000

A rerun of ``--download`` resumes: done clips are skipped. Without ``--segments``, an existing
``DIR/manifest.csv`` is downloaded as it is.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


def add_parser(sub) -> None:
    p = sub.add_parser("dataset", help="build a data set (AudioSet: select, preview, download)")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    a = kinds.add_parser(
        "audioset",
        help="select AudioSet classes from the ontology and segment CSVs, preview, download",
        description="Select clips of AudioSet target classes (a clip belongs to a class when a "
        "label is that ontology node or below it; clips in two classes are dropped), print the "
        "per-class counts after each filter, write DIR/manifest.csv, and optionally download "
        "the clips (yt-dlp + ffmpeg) into DIR/<class>/.",
    )
    a.add_argument(
        "--ontology", default="ontology", help="ontology.json (default: the cached official one)"
    )
    a.add_argument(
        "--segments",
        action="append",
        default=None,
        metavar="FILE",
        help="segment CSV, repeatable (eval, balanced_train, unbalanced_train or a path)",
    )
    a.add_argument(
        "--classes",
        default="Music,Animal,Sounds of things",
        help='target classes, comma-separated names or IDs (default: "%(default)s")',
    )
    a.add_argument("--out", required=True, metavar="DIR", help="output folder")
    a.add_argument(
        "--preview", action="store_true", help="print counts and write the manifest (default)"
    )
    a.add_argument("--download", action="store_true", help="download the selected clips")
    a.add_argument(
        "--exclude",
        default="",
        metavar="LABELS",
        help="drop clips carrying these labels or labels below them, e.g. Speech",
    )
    a.add_argument(
        "--skip-restricted",
        default="",
        metavar="KINDS",
        help="ignore labels of abstract and/or blacklist nodes (e.g. abstract,blacklist)",
    )
    a.add_argument(
        "--min-length", type=float, default=0.0, metavar="S", help="minimum segment length (s)"
    )
    a.add_argument(
        "--per-class", type=int, default=None, metavar="N", help="at most N clips per class"
    )
    a.add_argument("--balance", action="store_true", help="cap every class at the smallest one")
    a.add_argument("--seed", type=int, default=0, help="seed of the sampling under a cap")
    a.add_argument("--format", choices=("wav", "flac"), default="wav", help="audio file format")
    a.add_argument(
        "--sample-rate", type=int, default=16000, metavar="SR", help="Hz (default 16000)"
    )
    a.add_argument("--jobs", type=int, default=4, metavar="N", help="parallel downloads")
    a.add_argument(
        "--url-template",
        default=None,
        metavar="T",
        help="fetch from a mirror, e.g. http://host/audio/{ytid}.flac",
    )
    a.add_argument("--retries", type=int, default=2, help="retries of transient failures")
    a.add_argument("--backoff", type=float, default=2.0, metavar="S", help="first retry delay (s)")
    a.add_argument("--timeout", type=float, default=180.0, metavar="S", help="limit per clip (s)")
    a.add_argument(
        "--retry-failed",
        action="store_true",
        help="also retry clips an earlier run marked unavailable, private, 404...",
    )
    a.set_defaults(func=run)


def _split(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _select(args):
    from engine import audioset

    onto = audioset.load_ontology(audioset.resolve_input(args.ontology))
    cfg = audioset.SelectionConfig(
        classes=audioset.split_names(args.classes, onto),
        exclude=audioset.split_names(args.exclude, onto),
        skip_restricted=_split(args.skip_restricted),
        min_length=args.min_length,
        per_class=args.per_class,
        balance=args.balance,
        seed=args.seed,
        format=args.format,
    )
    segments = args.segments or ["eval", "balanced_train"]
    table = audioset.read_segments([audioset.resolve_input(s) for s in segments])
    sel = audioset.select(onto, table, cfg)
    print(audioset.format_preview(sel))
    path = audioset.write_manifest(sel, args.out)
    print(f"\nmanifest: {path} ({len(sel.clips):,} clips)")
    return sel


def run(args) -> int:
    from engine import audioset

    manifest = os.path.join(args.out, audioset.MANIFEST_NAME)
    if args.download and args.segments is None and os.path.isfile(manifest):
        print(f"downloading the existing {manifest} (give --segments to select again)")
    else:
        _select(args)
    if not args.download:
        return 0
    return _download(args)


def _line(ev, started: float) -> str:
    done_n = ev.done + ev.failed
    reasons = ", ".join(f"{r} {n}" for r, n in ev.failures[:4])
    reasons = f" ({reasons})" if reasons else ""
    elapsed = time.monotonic() - started
    return (
        f"[{done_n:>6,}/{ev.total:,}] done {ev.done:,}  failed {ev.failed:,}{reasons}"
        f"  active {ev.active}  {elapsed:.0f} s"
    )


def _download(args) -> int:
    from engine.audioset.download import (
        DownloadConfig,
        DownloadProgress,
        DownloadStarted,
        download_clips,
    )

    cfg = DownloadConfig(
        jobs=args.jobs,
        sample_rate=args.sample_rate,
        url_template=args.url_template,
        retries=args.retries,
        backoff_s=args.backoff,
        clip_timeout_s=args.timeout,
        retry_failed=args.retry_failed,
    )
    stop = threading.Event()

    def on_signal(signum, frame):  # first signal: stop cleanly; a second one: the default
        stop.set()
        signal.signal(signum, signal.SIG_DFL)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    tty = sys.stdout.isatty()
    started = time.monotonic()
    last_print = 0.0
    gen = download_clips(args.out, cfg, stop=stop)
    try:
        while True:
            try:
                ev = next(gen)
            except StopIteration as end:
                result = end.value
                break
            if isinstance(ev, DownloadStarted):
                print(
                    f"{ev.total:,} clips: {ev.already_done:,} already done, "
                    f"{ev.skipped_failed:,} failed before (kept), {ev.to_fetch:,} to fetch "
                    f"({args.jobs} at a time)",
                    flush=True,
                )
            elif isinstance(ev, DownloadProgress):
                now = time.monotonic()
                if tty:
                    print("\r" + _line(ev, started), end="", flush=True)
                elif now - last_print > 2.0:
                    print(_line(ev, started), flush=True)
                    last_print = now
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if tty:
        print()
    print(
        f"done {result.done:,} of {result.total:,}, failed {result.failed:,}, "
        f"pending {result.pending:,}; state: {result.state_path}"
    )
    for reason, n in result.failures:
        examples = [c.ytid for c in result.failed_clips if c.reason == reason][:3]
        print(f"  {reason}: {n:,} (e.g. {', '.join(examples)})")
    if result.cancelled:
        print("stopped: run the same command again to resume", file=sys.stderr)
        return 130
    if result.total and not result.done:
        print(
            f"snn-explorer dataset: error: none of the {result.total:,} clips downloaded "
            "(reasons above); the data set is empty",
            file=sys.stderr,
        )
        return 1
    return 0
