"""``snn-explorer classify``: label audio files (or images, for an image model) with a checkpoint.

Features are computed with the parameters stored in the checkpoint, so a file is read exactly as
the training data were.
"""

from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "classify",
        help="classify audio (or image) files with a trained checkpoint",
        description="Print the predicted label and the class probabilities of each file.",
    )
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint.pt or best.pt")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (images for MNIST)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--top", type=int, default=3, help="probabilities shown per file (text)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="P",
        help="answer 'unknown' when the top probability is under P (default 0.5); "
        "silent clips are always 'unknown'",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.device import resolve_device
    from engine.errors import ConfigError, SnnError
    from engine.train.checkpoint import Predictor
    from engine.train.unknown import DEFAULT_THRESHOLD, UNKNOWN, decide

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold {threshold} must be between 0 and 1")
    predictor = Predictor.from_checkpoint(args.checkpoint, device=str(resolve_device(args.device)))
    names = predictor.class_names
    if predictor.chance_note:
        print(f"snn-explorer classify: note: {predictor.chance_note}", file=sys.stderr)
    rows, failed = [], 0
    for path in args.files:
        try:
            pred = predictor.predict_file(path)
        except SnnError as exc:
            failed += 1
            msg = str(exc) if path in str(exc) else f"{path}: {exc}"
            if args.json:
                rows.append({"file": path, "error": msg})
            else:
                print(f"snn-explorer classify: error: {msg}", file=sys.stderr)
            continue
        probs = {n: round(float(p), 6) for n, p in zip(names, pred.probs)}
        label, _top = decide(pred.probs, names, threshold)
        if not predictor.is_image and _silent(path):
            label = UNKNOWN
        if args.json:
            row = {"file": path, "label": label, "best_guess": pred.label, "probs": probs}
            if pred.output_spikes is not None:
                row["spike_counts"] = {n: int(c) for n, c in zip(names, pred.output_spikes.sum(0))}
            rows.append(row)
        else:
            top = sorted(probs.items(), key=lambda kv: -kv[1])[: max(args.top, 1)]
            shown = "  ".join(f"{n} {p:.3f}" for n, p in top)
            print(f"{path}: {label}  ({shown})")
    if args.json:
        print(json.dumps(rows, indent=1))
    return 1 if failed else 0


def _silent(path: str) -> bool:
    from engine.audio.load import load_audio
    from engine.train.unknown import is_silent

    y, _sr = load_audio(path)
    return is_silent(y)
