"""Drive a training run and record what the run folder lacks; small real data for demos.

:func:`train_recorded` is :func:`engine.training.train` plus two files in the run folder:
``traces.npz`` (the latest traces of the tracked validation example, so a reopened run still
shows its spikes) and ``usage.json`` (peak memory). :func:`digits_feature_set` and
:func:`fsdd_slice` give a small real data set quickly (screenshots, benchmarks, tests).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Generator
from pathlib import Path

import numpy as np

from engine.errors import DataError
from engine.runs import TRACES_FILE, USAGE_FILE, read_json
from engine.train_events import Checkpointed, LayerTrace, RunFinished, RunStarted, Traces


# ----- traces on disk
def save_traces(traces: Traces, path: str | os.PathLike) -> Path:
    """Write a Traces event to an ``.npz`` (atomically); :func:`load_traces` reads it back."""
    p = Path(path)
    meta = {
        "epoch": traces.epoch,
        "example_index": traces.example_index,
        "label": traces.label,
        "predicted": traces.predicted,
        "threshold": traces.threshold,
        "layers": [
            {"name": L.name, "total_neurons": L.total_neurons, "spike_count": L.spike_count}
            for L in traces.layers
        ],
    }
    arrays = {
        "meta": np.array(json.dumps(meta)),
        "input": traces.input,
        "output_spikes": traces.output_spikes,
        "output_mem": traces.output_mem,
    }
    if traces.input_spikes is not None:
        arrays["input_spikes"] = traces.input_spikes
    for i, L in enumerate(traces.layers):
        arrays[f"layer{i}_spikes"] = L.spikes
        arrays[f"layer{i}_neuron_ids"] = L.neuron_ids
        arrays[f"layer{i}_mem"] = L.mem
        arrays[f"layer{i}_mem_ids"] = L.mem_ids
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, p)
    return p


def load_traces(path: str | os.PathLike) -> Traces | None:
    """The Traces saved by :func:`save_traces`; None when the file is absent or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            layers = tuple(
                LayerTrace(
                    name=str(L["name"]),
                    spikes=z[f"layer{i}_spikes"],
                    neuron_ids=z[f"layer{i}_neuron_ids"],
                    mem=z[f"layer{i}_mem"],
                    mem_ids=z[f"layer{i}_mem_ids"],
                    total_neurons=int(L["total_neurons"]),
                    spike_count=int(L["spike_count"]),
                )
                for i, L in enumerate(meta["layers"])
            )
            return Traces(
                epoch=int(meta["epoch"]),
                example_index=int(meta["example_index"]),
                label=int(meta["label"]),
                predicted=int(meta["predicted"]),
                input=z["input"],
                input_spikes=z["input_spikes"] if "input_spikes" in z.files else None,
                layers=layers,
                output_spikes=z["output_spikes"],
                output_mem=z["output_mem"],
                threshold=float(meta["threshold"]),
            )
    except (OSError, KeyError, ValueError, TypeError):
        return None


# ----- driving train
def _peak_bytes(device: str) -> tuple[int | None, str]:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.max_memory_allocated(device)), "cuda max allocated"
    try:
        import resource
        import sys

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes
        return int(rss if sys.platform == "darwin" else rss * 1024), "process peak RSS"
    except (ImportError, OSError):
        return None, ""


def _write_usage(run_dir: Path, device: str) -> None:
    peak, kind = _peak_bytes(device)
    if peak is None:
        return
    previous = read_json(run_dir / USAGE_FILE) if (run_dir / USAGE_FILE).exists() else {}
    peak = max(peak, int(previous.get("peak_memory_bytes") or 0))
    data = {"peak_memory_bytes": peak, "kind": kind, "device": device}
    tmp = run_dir / f".{USAGE_FILE}.tmp"
    tmp.write_text(json.dumps(data))
    tmp.replace(run_dir / USAGE_FILE)


def train_recorded(
    cfg,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    stop: threading.Event | None = None,
    data=None,
) -> Generator:
    """:func:`engine.training.train`, also writing ``traces.npz`` and ``usage.json``.

    Yields and returns exactly what ``train`` does. The peak memory is CUDA's peak allocation
    on a GPU, else the process's peak resident memory (which includes whatever else the
    process holds, e.g. the GUI).
    """
    from engine.training import train

    run = Path(run_dir)
    device = "cpu"
    gen = train(cfg, run, resume=resume, stop=stop, data=data)
    while True:
        try:
            ev = next(gen)
        except StopIteration as done:
            return done.value
        if isinstance(ev, RunStarted):
            device = ev.device
            if device.startswith("cuda"):
                import torch

                torch.cuda.reset_peak_memory_stats(device)
        elif isinstance(ev, Traces):
            save_traces(ev, run / TRACES_FILE)
        elif isinstance(ev, (Checkpointed, RunFinished)):
            _write_usage(run, device)
        yield ev


# ----- small real data
def digits_feature_set(size: int = 16, seed: int = 0):
    """scikit-learn's bundled 8x8 digits as a FeatureSet (``[N, 1, size, size]`` in [0, 1])
    with seeded 80/10/10 splits: a real data set that needs no download (demos, benchmarks)."""
    from engine.features import FeatureConfig
    from engine.featureset import FeatureSet
    from engine.samples import digits_sample

    images, labels = digits_sample(size)
    n = len(labels)
    order = np.random.default_rng(seed).permutation(n)
    n_val = n_test = n // 10
    splits = {
        "train": np.sort(order[n_val + n_test :]),
        "val": np.sort(order[:n_val]),
        "test": np.sort(order[n_val : n_val + n_test]),
    }
    return FeatureSet(
        x=images[:, None].astype(np.float32),
        y=labels.astype(np.int64),
        splits=splits,
        class_names=[str(d) for d in range(10)],
        feature_config=FeatureConfig(kind="image"),
        spec="sklearn-digits",
        paths=[None] * n,
    )


def fsdd_slice(
    recordings: str | os.PathLike,
    dest: str | os.PathLike,
    speakers: int = 2,
    takes: range = range(3, 13),
) -> str:
    """Link (or copy) a small slice of the Free Spoken Digit Dataset into ``dest``.

    Keeps the file names (``{digit}_{speaker}_{take}.wav``), so ``fsdd:DEST`` opens it with the
    official split (takes 0-4 test). Returns the spec ``fsdd:DEST``.
    """
    import re
    import shutil

    src, dst = Path(recordings), Path(dest)
    pattern = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
    files = sorted(f for f in os.listdir(src) if pattern.match(f))
    names = sorted({pattern.match(f).group(2) for f in files})[:speakers]
    if not names:
        raise DataError(f"{src}: no FSDD recordings ({{digit}}_{{speaker}}_{{take}}.wav) found")
    dst.mkdir(parents=True, exist_ok=True)
    for f in files:
        m = pattern.match(f)
        if m.group(2) in names and int(m.group(3)) in takes and not (dst / f).exists():
            try:
                os.symlink(src.resolve() / f, dst / f)
            except OSError:  # no symlinks here (e.g. Windows without the right): copy
                shutil.copyfile(src / f, dst / f)
    return f"fsdd:{dst}"
