"""Train every model name for one epoch on FSDD and print a Markdown table of the numbers.

    python scripts/one_epoch_each.py [--data fsdd:../shared/data/fsdd/recordings]
        [--limit-big 600] [--out runs/one_epoch] [--models csnn,cnn,...]

The small models (fc_snn, csnn, csnn_avg, cnn) train on the whole official training split; the
torchvision baselines on a random slice of about ``--limit-big`` examples (an epoch of VGG-16 on
all of FSDD takes many minutes on a 2-core CPU). Accuracy after one epoch on a slice says little;
the table is about cost: parameters, wall time, MACs or SynOps per inference.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from engine.generators import run_to_end
from engine.models.registry import MODELS, SPIKING_MODELS
from engine.train.config import RunConfig
from engine.train.loop import train

SMALL = ("fc_snn", "csnn", "csnn_avg", "cnn")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fsdd:../shared/data/fsdd/recordings")
    p.add_argument("--limit-big", type=int, default=600)
    p.add_argument("--out", default="runs/one_epoch")
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args()
    rows = []
    for name in args.models.split(","):
        out = Path(args.out) / name
        shutil.rmtree(out, ignore_errors=True)
        limit = 0 if name in SMALL else args.limit_big
        # VGG-16 has no batch norm: at the default 2e-3 it does not learn at all
        lr = 1e-4 if name == "vgg16" else 2e-3
        cfg = RunConfig(data=args.data, model=name, epochs=1, limit=limit, lr=lr)
        t0 = time.perf_counter()
        result = run_to_end(train(cfg, out))
        m = result.metrics
        rows.append(
            {
                "model": name,
                "spiking": name in SPIKING_MODELS,
                "train_examples": m["n_train"],
                "params": m["params"],
                "epoch_s": m["history"][0]["epoch_time_s"],
                "epoch_cpu_s": m["history"][0].get("epoch_cpu_s"),
                "wall_s": time.perf_counter() - t0,
                "val_acc": m["history"][0]["val_acc"],
                "test_acc": m["test"]["accuracy"],
                "macs": m["macs"],
                "synops": m["synops"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "table.json").write_text(json.dumps(rows, indent=1))
    print(
        "\n| model | train examples | parameters | epoch (s) | val acc | test acc | MACs | SynOps |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['train_examples']} | {r['params']:,} | {r['epoch_s']:.1f} | "
            f"{r['val_acc']:.3f} | {r['test_acc']:.3f} | {r['macs'] / 1e6:.2f} M | "
            f"{r['synops'] / 1e6:.2f} M |"
        )


if __name__ == "__main__":
    main()
