"""Spiking Heidelberg Digits and Spiking Speech Commands as published: ``shd:PATH``, ``ssc:PATH``.

Each HDF5 file (Cramer et al. 2020) holds ragged arrays, one row per example::

    spikes/times   float  seconds of each spike
    spikes/units   uint   input channel (0-699) of each spike
    labels         uint   class index
    extra/keys     bytes  class names (optional)

``PATH`` is a folder with ``shd_train.h5`` and ``shd_test.h5`` (SSC: ``ssc_train.h5``,
``ssc_valid.h5``, ``ssc_test.h5``): the files are the official split. A single ``.h5`` file
works too (no split of its own). The spikes are binned to ``bins`` steps of ``dt`` seconds
(defaults 50 x 20 ms = 1 s; later spikes are dropped): ``load(i)`` gives a ``float32
[700, bins]`` array of 0/1, the time axis last, which a spiking model reads one step per bin
(encoder ``spikes``). Options follow the path: ``shd:PATH?bins=100&dt=0.01``.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl

import numpy as np

from engine.data.source import DatasetSummary, DataSource, Item
from engine.errors import DataError

__all__ = ["CHANNELS", "SpikeSource", "bin_spikes", "spiking_source", "split_options"]

CHANNELS = 700
SPLIT_FILES = {"train": "train", "valid": "val", "test": "test"}
DEFAULT_BINS = 50
DEFAULT_DT = 0.02


def bin_spikes(
    times: np.ndarray, units: np.ndarray, bins: int, dt: float, channels: int = CHANNELS
) -> np.ndarray:
    """``float32 [channels, bins]``: 1 where a channel spiked in a bin (spikes after
    ``bins * dt`` seconds and units outside ``[0, channels)`` are dropped)."""
    out = np.zeros((channels, bins), dtype=np.float32)
    t = np.floor(np.asarray(times, dtype=np.float64) / dt).astype(np.int64)
    u = np.asarray(units, dtype=np.int64)
    keep = (t >= 0) & (t < bins) & (u >= 0) & (u < channels)
    out[u[keep], t[keep]] = 1.0
    return out


def split_options(path: str, spec: str) -> tuple[str, int, float]:
    """``PATH?bins=N&dt=S`` -> (path, bins, dt); DataError naming a bad option."""
    path, _, query = path.partition("?")
    opts = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(opts) - {"bins", "dt"})
    if unknown:
        raise DataError(f"{spec}: unknown option {unknown[0]!r} (use bins=N and dt=SECONDS)")
    try:
        bins = int(opts.get("bins", DEFAULT_BINS))
        dt = float(opts.get("dt", DEFAULT_DT))
    except ValueError:
        raise DataError(f"{spec}: bins must be a whole number and dt a number of seconds") from None
    if not 1 <= bins <= 10_000 or not 0 < dt <= 10 or not np.isfinite(dt):
        raise DataError(f"{spec}: bins={bins} must be 1-10000 and dt={dt} in (0, 10] seconds")
    return path, bins, dt


class SpikeSource(DataSource):
    """Spike trains held in memory (ragged times and units per item), binned on load."""

    kind = "spikes"

    def __init__(self, spec, class_names, items, times, units, bins, dt, skipped=()):
        super().__init__(spec, class_names, items, skipped, group_splits=True)
        self.times, self.units = times, units
        self.bins, self.dt, self.channels = int(bins), float(dt), CHANNELS

    def load(self, i: int) -> np.ndarray:
        """Item ``i`` as ``float32 [700, bins]`` of 0/1 (time last)."""
        k = self.items[i].index
        return bin_spikes(self.times[k], self.units[k], self.bins, self.dt, self.channels)

    def duration(self, i: int) -> float:
        t = self.times[self.items[i].index]
        return float(t.max()) if len(t) else 0.0

    def summary(self) -> DatasetSummary:
        c = len(self.class_names)
        labels = self.labels()
        d = np.array([self.duration(i) for i in range(len(self.items))])
        counts = np.bincount(labels, minlength=c)
        total = np.bincount(labels, weights=d, minlength=c)
        return DatasetSummary(
            spec=self.spec,
            kind="spikes",
            class_names=tuple(self.class_names),
            counts=counts,
            split_counts=self._split_counts(),
            total_duration=total,
            mean_duration=total / np.maximum(counts, 1),
            min_duration=float(d.min()) if len(d) else 0.0,
            max_duration=float(d.max()) if len(d) else 0.0,
            sample_rates={},
            channels={},
            image_shape=(self.channels, self.bins),
            skipped=tuple(self.skipped),
        )


def _read_h5(path: str, spec: str):
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "spikes" not in f or "labels" not in f:
                raise DataError(f"{path}: no spikes/ and labels in this HDF5 file ({spec})")
            times = [np.asarray(t, dtype=np.float64) for t in f["spikes"]["times"][()]]
            units = [np.asarray(u, dtype=np.int64) for u in f["spikes"]["units"][()]]
            labels = np.asarray(f["labels"][()], dtype=np.int64)
            keys = None
            if "extra" in f and "keys" in f["extra"]:
                keys = [k.decode() if isinstance(k, bytes) else str(k) for k in f["extra"]["keys"]]
    except DataError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a readable SHD/SSC HDF5 file ({exc})") from None
    if not (len(times) == len(units) == len(labels)):
        raise DataError(f"{path}: spikes/times, spikes/units and labels differ in length")
    for i, (t, u) in enumerate(zip(times, units)):
        if len(t) != len(u):
            raise DataError(f"{path}: example {i} has {len(t)} times but {len(u)} units")
    return times, units, labels, keys


def spiking_source(kind: str, path: str, spec: str | None = None) -> SpikeSource:
    """Open ``shd:PATH`` or ``ssc:PATH`` (see the module docstring)."""
    spec = spec or f"{kind}:{path}"
    path, bins, dt = split_options(path, spec)
    if os.path.isfile(path):
        files = [(path, None)]
    elif os.path.isdir(path):
        files = [
            (os.path.join(path, f"{kind}_{name}.h5"), split)
            for name, split in SPLIT_FILES.items()
            if os.path.isfile(os.path.join(path, f"{kind}_{name}.h5"))
        ]
        if not files:
            raise DataError(f"{spec}: no {kind}_train.h5 / {kind}_test.h5 in {path}")
    else:
        raise DataError(f"{spec}: no such file or folder {path}")
    all_t, all_u, items, names = [], [], [], None
    n_classes = 0
    for file, split in files:
        times, units, labels, keys = _read_h5(file, spec)
        names = names or keys
        n_classes = max(n_classes, int(labels.max()) + 1 if len(labels) else 0)
        for t, u, lab in zip(times, units, labels):
            items.append(Item(None, int(lab), split, None, len(all_t)))
            all_t.append(t)
            all_u.append(u)
    if not items:
        raise DataError(f"{spec}: the HDF5 files hold no examples")
    if names is None or len(names) < n_classes:
        names = [str(c) for c in range(n_classes)]
    return SpikeSource(spec, list(names), items, all_t, all_u, bins, dt)
