"""Drive a training run and record what the run folder lacks; small real data for demos.

:func:`train_recorded` is :func:`engine.train.loop.train` plus two files in the run folder:
``traces.npz`` (the latest traces of the tracked validation example, so a reopened run still
shows its spikes) and ``usage.json`` (peak memory). :func:`digits_feature_set` and
:func:`fsdd_slice` give a small real data set quickly (screenshots, benchmarks, tests).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Generator
from pathlib import Path

import numpy as np

from engine.atomic import atomic_path, write_atomic
from engine.errors import DataError
from engine.train.events import Checkpointed, LayerTrace, RunFinished, RunStarted, Traces
from engine.train.run_exports import TensorBoardLog
from engine.train.run_folder import TRACES_FILE, USAGE_FILE, read_json


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
    with atomic_path(p) as tmp, open(tmp, "wb") as fh:  # a file object: no ".npz" appended
        np.savez_compressed(fh, **arrays)
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
def _max_rss() -> int | None:
    """The process's peak resident memory so far, in bytes (None where unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # Linux reports KiB


def _rss_now() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class _MemoryWatch:
    """Peak memory of one run: CUDA's peak allocation on a GPU; on the CPU the process's peak
    resident memory when this run raised it, else the largest resident size seen at an event
    (a lower bound: an earlier, larger run in the same process hides this one's true peak)."""

    def __init__(self) -> None:
        self.device = "cpu"
        self.start_max = _max_rss() or 0
        self.sampled = 0

    def started(self, device: str) -> None:
        self.device = device
        if device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(device)

    def sample(self) -> None:
        if not self.device.startswith("cuda"):
            self.sampled = max(self.sampled, _rss_now() or 0)

    def peak(self) -> tuple[int | None, str]:
        if self.device.startswith("cuda"):
            import torch

            return int(torch.cuda.max_memory_allocated(self.device)), "cuda max allocated"
        end = _max_rss()
        if end is not None and end > self.start_max:
            return end, "process peak RSS"
        if self.sampled:
            return self.sampled, "largest sampled RSS"
        return None, ""

    def write(self, run_dir: Path, resumed: bool) -> None:
        peak, kind = self.peak()
        if peak is None:
            return
        data = {"peak_memory_bytes": peak, "kind": kind, "device": self.device}
        previous = read_json(run_dir / USAGE_FILE)
        if resumed and int(previous.get("peak_memory_bytes") or 0) > peak:
            data = previous  # an earlier session of this run needed more
        write_atomic(run_dir / USAGE_FILE, json.dumps(data))


def train_recorded(
    cfg,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    stop: threading.Event | None = None,
    data=None,
    tensorboard: bool = False,
) -> Generator:
    """:func:`engine.train.loop.train`, also writing ``traces.npz`` and ``usage.json`` (and,
    with ``tensorboard``, TensorBoard event files in ``RUN/tb``).

    Yields and returns exactly what ``train`` does. The peak memory (see ``_MemoryWatch``) is
    CUDA's peak allocation on a GPU, else the process's resident memory, which includes
    whatever else the process holds (the GUI, say).
    """
    from engine.train.loop import train

    run = Path(run_dir)
    memory = _MemoryWatch()
    board = TensorBoardLog(run) if tensorboard else None  # fails now when tensorboard is absent
    gen = train(cfg, run, resume=resume, stop=stop, data=data)
    try:
        while True:
            try:
                ev = next(gen)
            except StopIteration as done:
                return done.value
            memory.sample()
            if isinstance(ev, RunStarted):
                memory.started(ev.device)
            elif isinstance(ev, Traces):
                save_traces(ev, run / TRACES_FILE)
            elif isinstance(ev, (Checkpointed, RunFinished)):
                memory.write(run, resume)
            if board is not None:
                board.add(ev)
            yield ev
    finally:
        if board is not None:
            board.close()


# ----- small real data
def digits_feature_set(size: int = 16, seed: int = 0):
    """scikit-learn's bundled 8x8 digits as a FeatureSet (``[N, 1, size, size]`` in [0, 1])
    with seeded 80/10/10 splits: a real data set that needs no download (demos, benchmarks)."""
    from engine.audio.features import FeatureConfig
    from engine.data.feature_set import FeatureSet
    from engine.data.samples import digits_sample

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
