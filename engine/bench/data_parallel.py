"""The ``distributed`` section of ``snn-explorer bench``: training samples/s in 1 and 2 processes.

Each run is the real command (``snn-explorer train --nproc N``, torchrun with gloo on the CPU,
one torch thread per process) on scikit-learn's bundled digits written as MNIST IDX files, the
small spiking ``fc_snn`` for one epoch (two in the full run). The figure is training examples
per second of epoch wall time (validation included, which every process runs in full), so it
also counts the processes' start-up costs only through the epoch, not the interpreter start.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CONFIG = """
model = "fc_snn"
steps = {steps}
epochs = {epochs}
batch = 64
seed = 0
device = "cpu"
amp = "off"

[model_options]
hidden = {hidden}
"""


def write_idx(path: Path, array: np.ndarray) -> None:
    """``array`` as an uncompressed IDX file of unsigned bytes (the MNIST format)."""
    head = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(head + np.asarray(array).astype(np.uint8).tobytes())


def write_digits_idx(folder: Path, size: int = 8) -> Path:
    """scikit-learn's 1797 digits as ``t10k-{images,labels}`` IDX files in ``folder``."""
    from engine.data.samples import digits_sample

    images, labels = digits_sample(size)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "t10k-images-idx3-ubyte", np.round(images * 255))
    write_idx(folder / "t10k-labels-idx1-ubyte", labels)
    return folder


def _run(tmp: Path, nproc: int, epochs: int, steps: int, hidden: int, timeout_s: float) -> dict:
    cfg = tmp / "config.toml"
    cfg.write_text(CONFIG.format(epochs=epochs, steps=steps, hidden=hidden))
    out = tmp / f"run-{nproc}"
    cmd = [sys.executable, "-m", "app.cli", "train", "--config", str(cfg), "--quiet"]
    cmd += ["--data", f"mnist:{tmp / 'digits'}", "--out", str(out), "--nproc", str(nproc)]
    env = dict(os.environ, OMP_NUM_THREADS="1", SNN_EXPLORER_CACHE=str(tmp / "cache"))
    env.pop("WORLD_SIZE", None)
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {timeout_s:g} s"}
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"status": "error", "reason": tail[0][:300]}
    m = json.loads((out / "metrics.json").read_text())
    times = [h["epoch_time_s"] for h in m["history"]]
    return {
        "status": "ok",
        "samples_per_s": round(m["n_train"] / float(np.median(times)), 1),
        "epoch_time_s": [round(t, 2) for t in times],
        "test_acc": m["test"]["accuracy"] if m.get("test") else None,
    }


def distributed_section(opts) -> dict:
    """Training samples/s of ``train --nproc 1`` and ``--nproc 2`` on the CPU (gloo)."""
    epochs, steps, hidden = (1, 4, 64) if opts.quick else (2, 10, 256)
    with tempfile.TemporaryDirectory(prefix="snn-bench-ddp-") as d:
        tmp = Path(d)
        write_digits_idx(tmp / "digits")
        out = {"case": f"digits 8x8, fc_snn hidden {hidden}, T={steps}, batch 64, {epochs} epoch"}
        for n in (1, 2):
            out[f"nproc_{n}"] = _run(tmp, n, epochs, steps, hidden, opts.timeout_s)
    a, b = out["nproc_1"], out["nproc_2"]
    if a.get("status") == "ok" and b.get("status") == "ok":
        out["speedup_2_vs_1"] = round(b["samples_per_s"] / a["samples_per_s"], 2)
    out["cpu_count"] = os.cpu_count()
    return out
