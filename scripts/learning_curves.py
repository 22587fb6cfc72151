"""Learning curves for a person's own small sets: K classes x N clips per class, random draws.

    python scripts/learning_curves.py --data csv:../shared/data/kitchen20/kitchen20.csv \\
        --classes 3,5 --clips 5,10,20,40 --draws 10 --out runs/curves-k20
    python scripts/learning_curves.py --data fsdd:../shared/data/fsdd/recordings \\
        --classes 3,5 --clips 5,10,20,40 --draws 10 --out runs/curves-fsdd

Each draw picks K classes and N clips of each at random and writes them as a manifest with no
split column, which is what a person's own folder is: ``train`` on it goes through the recipe
exactly as ``snn-explorer train --data folder:DIR --out RUN`` does (features, model, batch,
epochs, its own validation and test carved from the N x K clips). The trained ``best.pt`` then
classifies the *rest* of those classes' clips (as ``classify`` does), which none of the runs saw.
When the set has groups (Kitchen20's source recordings), no held-out clip shares a group with a
training clip. ``--folds 1,2,3,4`` draws from those folds only (tuning on training folds).

Models: ``spiking`` (the recipe's recommended model), ``twin`` (its non-spiking twin, ``--twin``)
and ``logreg``: scikit-learn's logistic regression on the per-band mean and standard deviation
of a 64-band log-mel (the non-deep baseline). ``--set key=value`` overrides a run setting for
every deep run (to compare recipe choices). Results go to ``OUT/results.jsonl`` (one line per
run; a rerun skips what is there) and the table is printed in Markdown.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import random
import shutil
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from engine.data.specs import open_source
from engine.generators import run_to_end
from engine.train.config import RunConfig
from engine.train.loop import train
from engine.train.recipe import apply_recipe


def _draw(items, k: int, n: int, rng: random.Random, grouped: bool):
    """(train items, held-out items) of one draw, or None when the classes lack clips."""
    by = defaultdict(list)
    for it in items:
        by[it.label].append(it)
    labels = sorted(c for c, v in by.items() if len(v) >= n + 2)
    if len(labels) < k:
        return None
    chosen = rng.sample(labels, k)
    train_items, held = [], []
    for c in chosen:
        clips = list(by[c])
        rng.shuffle(clips)
        if grouped:  # whole groups into training until N clips, the rest held out
            groups = defaultdict(list)
            for it in clips:
                groups[it.group].append(it)
            order = list(groups)
            rng.shuffle(order)
            picked, used = [], set()
            for g in order:
                if len(picked) >= n:
                    break
                take = groups[g][: n - len(picked)]
                picked += take
                used.add(g)
            held += [it for it in clips if it.group not in used]
            train_items += picked
        else:
            train_items += clips[:n]
            held += clips[n:]
    return chosen, train_items, held


def _manifest(path: Path, items) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        for it in items:
            w.writerow([str(Path(it.path).resolve()), it.label])


def _held_out_accuracy(ckpt: Path, held) -> float:
    from engine.audio.features import features_from_file
    from engine.train.checkpoint import Predictor

    pred = Predictor.from_checkpoint(ckpt)
    x = np.stack([features_from_file(it.path, pred.feature_config) for it in held])
    right = 0
    for i in range(0, len(x), 64):
        for p, it in zip(pred.predict_batch(x[i : i + 64]), held[i : i + 64]):
            right += p.label == it.label
    return right / len(held)


def _logmel_stats(paths, sr: int, duration: float):
    from engine.audio.features import FeatureConfig, features_from_file

    cfg = FeatureConfig(kind="logmel", n_mels=64, sample_rate=sr, duration=duration)
    out = []
    for p in paths:
        f = features_from_file(p, cfg)  # [bands, frames]
        f = f.reshape(-1, f.shape[-1])
        out.append(np.concatenate([f.mean(1), f.std(1)]))
    return np.stack(out)


def _logreg(train_items, held, proposal) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fc = proposal.config
    xtr = _logmel_stats([it.path for it in train_items], fc.sample_rate, fc.duration)
    xte = _logmel_stats([it.path for it in held], fc.sample_rate, fc.duration)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    clf.fit(xtr, [it.label for it in train_items])
    return float(np.mean(clf.predict(xte) == np.array([it.label for it in held])))


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        key, _, value = p.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def table(results: Path) -> str:
    cells = defaultdict(list)
    for r in map(json.loads, results.read_text().splitlines()):
        cells[(r["classes"], r["clips"], r["model"])].append(r)
    models = sorted({m for (_k, _n, m) in cells}, key=["spiking", "twin", "logreg"].index)
    head = "| K classes | N clips per class | " + " | ".join(
        f"{m} (mean +- sd, s per run)" for m in models
    )
    lines = [head + " |", "|---|---|" + "---|" * len(models)]
    for k, n in sorted({(k, n) for (k, n, _m) in cells}):
        row = f"| {k} | {n} |"
        for m in models:
            rs = cells.get((k, n, m), [])
            if not rs:
                row += " - |"
                continue
            acc = [100 * r["held_out_acc"] for r in rs]
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            secs = statistics.mean(r["seconds"] for r in rs)
            row += f" {statistics.mean(acc):.1f} +- {sd:.1f} % ({len(rs)} draws, {secs:.0f} s) |"
        lines.append(row)
    return "\n".join(lines)


def _append(results: Path, row: dict) -> None:
    """One finished run, one line: a killed script resumes after the last line written."""
    line = json.dumps(row)
    with open(results, "a") as fh:
        fh.write(line + "\n")
    print(line, flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="the set to draw from (not needed with --table)")
    p.add_argument("--classes", default="3,5")
    p.add_argument("--clips", default="5,10,20,40")
    p.add_argument("--draws", type=int, default=10)
    p.add_argument("--first-draw", type=int, default=0)
    p.add_argument("--models", default="spiking,twin,logreg")
    p.add_argument("--folds", default="", help="draw only from these folds (e.g. 1,2,3,4)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0, help="the runs' seed")
    p.add_argument("--out", default="runs/learning-curves")
    p.add_argument("--table", action="store_true", help="only print the table of OUT")
    args = p.parse_args()

    out = Path(args.out)
    results = out / "results.jsonl"
    if args.table:
        print(table(results))
        return
    if not args.data:
        p.error("--data is needed to run (or give --table)")
    out.mkdir(parents=True, exist_ok=True)
    done = set()
    if results.exists():
        for r in map(json.loads, results.read_text().splitlines()):
            done.add((r["classes"], r["clips"], r["draw"], r["model"]))
    source = open_source(args.data)
    names = source.class_names
    items = [dataclasses.replace(it, label=names[it.label]) for it in source.items]
    if args.folds:
        keep = {f.strip() for f in args.folds.split(",")}
        items = [it for it in items if str(getattr(it, "fold", None)) in keep]
    grouped = len({it.group for it in items if it.group}) > 1 and args.data.startswith("csv:")
    extra = _overrides(args.set)
    for k in (int(v) for v in args.classes.split(",")):
        for n in (int(v) for v in args.clips.split(",")):
            for d in range(args.first_draw, args.first_draw + args.draws):
                rng = random.Random(f"{k}-{n}-{d}")
                drawn = _draw(items, k, n, rng, grouped)
                if drawn is None:
                    continue
                chosen, train_items, held = drawn
                spec = f"csv:{out / 'sets' / f'k{k}-n{n}-d{d}.csv'}"
                _manifest(Path(spec[4:]), train_items)
                for model in args.models.split(","):
                    if (k, n, d, model) in done:
                        continue
                    t0 = time.perf_counter()
                    own = open_source(spec)
                    if model == "logreg":
                        from engine.audio.feature_proposal import propose_for_source

                        acc = _logreg(train_items, held, propose_for_source(own))
                        epochs, batch, mdl = 0, 0, "logreg"
                    else:
                        cfg, _ = apply_recipe(
                            RunConfig(data=spec, seed=args.seed), own, twin=model == "twin"
                        )
                        cfg = cfg.replace(**extra)
                        run_dir = out / "runs" / f"k{k}-n{n}-d{d}-{model}"
                        shutil.rmtree(run_dir, ignore_errors=True)
                        res = run_to_end(train(cfg, run_dir))
                        acc = _held_out_accuracy(run_dir / "best.pt", held)
                        epochs, batch, mdl = res.epochs_done, cfg.batch, cfg.model
                    row = {
                        "classes": k,
                        "clips": n,
                        "draw": d,
                        "model": model,
                        "name": mdl,
                        "labels": chosen,
                        "held_out": len(held),
                        "held_out_acc": acc,
                        "epochs": epochs,
                        "batch": batch,
                        "seconds": round(time.perf_counter() - t0, 1),
                    }
                    _append(results, row)
    print(table(results))


if __name__ == "__main__":
    main()
