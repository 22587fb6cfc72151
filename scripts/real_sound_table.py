"""Cross-validated accuracy and cost of models on a real sound set, as a Markdown table.

    python scripts/real_sound_table.py --data csv:../shared/data/kitchen20/kitchen20.csv \\
        --cv folds --models scnn_gap,cnn_gap,csnn,cnn --epochs 20 --out runs/k20-table
    python scripts/real_sound_table.py --data fsdd:../shared/data/fsdd/recordings \\
        --cv speakers --models scnn_gap,cnn_gap --out runs/fsdd-speakers

Every model gets the same data-derived features and the small-data recipe (``engine.train.recipe``,
as ``snn-explorer train --data SPEC --out DIR`` does); only the model differs. Each fold is a
normal run folder (``OUT/MODEL/fold-K``); results go to ``OUT/results.jsonl`` one line per fold,
and a rerun skips the folds already there (so a killed measurement continues). ``--folds 5``
runs a subset of the folds (e.g. for timing).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from engine.data.feature_set import build_feature_set
from engine.data.specs import open_source
from engine.generators import run_to_end
from engine.models.registry import is_spiking
from engine.train.config import RunConfig
from engine.train.cross_validation import fold_data, fold_plan
from engine.train.inputs import with_features
from engine.train.loop import train
from engine.train.recipe import apply_recipe


def _features(cfg: RunConfig, source):
    from engine.audio.features import FeatureConfig

    return run_to_end(
        build_feature_set(source, FeatureConfig.from_dict(cfg.features), seed=cfg.seed)
    )


def _done(results: Path) -> set[tuple[str, str]]:
    if not results.exists():
        return set()
    return {(r["model"], r["fold"]) for r in map(json.loads, results.read_text().splitlines())}


def table(results: Path) -> str:
    rows: dict[str, list[dict]] = {}
    for r in map(json.loads, results.read_text().splitlines()):
        rows.setdefault(r["model"], []).append(r)
    lines = [
        "| model | spiking | folds | test accuracy (mean +- sd) | s per fold | epochs | "
        "SynOps or MACs per inference |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, rs in rows.items():
        acc = [r["test_acc"] for r in rs]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        ops = rs[0]["synops"] if rs[0]["spiking"] else rs[0]["macs"]
        lines.append(
            f"| {model} | {'yes' if rs[0]['spiking'] else 'no'} | {len(rs)} | "
            f"{100 * statistics.mean(acc):.1f} +- {100 * sd:.1f} % | "
            f"{statistics.mean(r['seconds'] for r in rs):.0f} | "
            f"{statistics.mean(r['epochs'] for r in rs):.1f} | "
            f"{ops / 1e6:.2f} M {'SynOps' if rs[0]['spiking'] else 'MACs'} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--cv", default="folds", help="folds, speakers or K")
    p.add_argument("--models", default="scnn_gap,cnn_gap")
    p.add_argument("--epochs", type=int, default=0, help="cap the recipe's epochs (0 = recipe)")
    p.add_argument("--folds", default="", help="comma-separated fold numbers to run (default all)")
    p.add_argument("--steps", type=int, default=0, help="time steps of the spiking models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--amp", default="auto", help="auto, off or bf16 (the run config's amp)")
    p.add_argument("--out", default="runs/real-sound-table")
    args = p.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    source = open_source(args.data)
    base, _recipe = apply_recipe(RunConfig(data=args.data, seed=args.seed, amp=args.amp), source)
    if args.epochs:
        base = base.replace(epochs=args.epochs)
    if args.steps:
        base = base.replace(steps=args.steps)
    fs = _features(base, source)
    base = with_features(base, fs)
    plan = fold_plan(source, args.cv, base.seed, base.val_fraction)
    wanted = {int(k) for k in args.folds.split(",") if k}
    done = _done(results)
    for model in args.models.split(","):
        cfg = base.replace(model=model)
        for k, fold in enumerate(plan, start=1):
            if (wanted and k not in wanted) or (model, fold.name) in done:
                continue
            run_dir = out / model / f"fold-{k}"
            shutil.rmtree(run_dir, ignore_errors=True)
            t0 = time.perf_counter()
            result = run_to_end(train(cfg, run_dir, data=fold_data(fs, fold)))
            m = result.metrics
            row = {
                "model": model,
                "fold": fold.name,
                "spiking": is_spiking(model),
                "test_acc": result.test_acc,
                "best_val_acc": result.best_val_acc,
                "epochs": result.epochs_done,
                "seconds": round(time.perf_counter() - t0, 1),
                "synops": m.get("synops"),
                "macs": m.get("macs"),
            }
            with open(results, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
