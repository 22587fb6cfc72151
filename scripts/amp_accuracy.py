"""Does bf16 autocast cost accuracy? fp32 against bf16 on FSDD and MNIST, several seeds.

    python scripts/amp_accuracy.py --out runs/amp-accuracy            # FSDD + MNIST, seeds 0-2
    python scripts/amp_accuracy.py --out DIR --sets mnist --seeds 0,1

Each run is the app's default CSNN (``RunConfig`` defaults: 10 steps, batch 64, batch norm,
membrane cross-entropy) trained by ``engine.train.loop.train`` with ``amp = "off"`` and with
``amp = "bf16"``, everything else identical (same seed, same data order). FSDD uses its official
split (300 test clips), MNIST the shared 10k test set split 8,000 / 2,000. Results go to
``OUT/results.jsonl`` one line per run (a rerun skips the runs already there) and the table is
printed: per set, the mean +- sd test accuracy of each precision and their mean difference.
This is the check behind ``amp = "auto"`` (``engine/train/amp.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from engine.generators import run_to_end
from engine.paths import find_shared_data
from engine.train.config import RunConfig
from engine.train.loop import train

EPOCHS = {"fsdd": 6, "mnist": 3}


def _spec(name: str) -> str:
    found = find_shared_data(name)
    if found is None:
        raise SystemExit(f"{name}: not found in the shared data folders")
    return f"fsdd:{found / 'recordings'}" if name == "fsdd" else f"mnist:{found}"


def run_one(data: str, name: str, seed: int, amp: str, epochs: int) -> dict:
    cfg = RunConfig(data=data, model="csnn", seed=seed, amp=amp, epochs=epochs, device="cpu")
    with tempfile.TemporaryDirectory(prefix="amp-") as out:
        t0 = time.perf_counter()
        result = run_to_end(train(cfg, out))
    return {
        "set": name,
        "seed": seed,
        "amp": amp,
        "epochs": epochs,
        "test_acc": result.test_acc,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| set | fp32 test accuracy | bf16 test accuracy | bf16 - fp32 (mean over seeds) | "
        "seeds | s per run fp32 / bf16 |",
        "|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["set"] for r in rows):
        by = {
            amp: {r["seed"]: r for r in rows if r["set"] == name and r["amp"] == amp}
            for amp in ("off", "bf16")
        }
        seeds = sorted(set(by["off"]) & set(by["bf16"]))
        if not seeds:
            continue

        def stats(amp, seeds=seeds, by=by):
            acc = [100 * by[amp][s]["test_acc"] for s in seeds]
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            return statistics.mean(acc), sd, "/".join(f"{a:.1f}" for a in acc)

        m32, s32, a32 = stats("off")
        m16, s16, a16 = stats("bf16")
        sec = [statistics.mean(by[amp][s]["seconds"] for s in seeds) for amp in ("off", "bf16")]
        lines.append(
            f"| {name} | {m32:.2f} +- {s32:.2f} % ({a32}) | {m16:.2f} +- {s16:.2f} % ({a16}) | "
            f"{m16 - m32:+.2f} points | {len(seeds)} | {sec[0]:.0f} / {sec[1]:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--sets", default="mnist,fsdd")
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    rows = [json.loads(x) for x in results.read_text().splitlines()] if results.exists() else []
    done = {(r["set"], r["seed"], r["amp"]) for r in rows}
    for name in args.sets.split(","):
        data = _spec(name)
        for seed in map(int, args.seeds.split(",")):
            for amp in ("off", "bf16"):
                if (name, seed, amp) in done:
                    continue
                row = run_one(data, name, seed, amp, EPOCHS[name])
                print(json.dumps(row), flush=True)
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                rows.append(row)
    print(table(rows))


if __name__ == "__main__":
    main()
