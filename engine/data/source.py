"""The data set interface: ``Item``, ``DataSource`` (audio files or in-memory images) and the
``DatasetSummary`` it reports. Sources are opened from spec strings by ``engine.data.specs``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from engine.audio.load import AudioInfo, load_audio
from engine.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Item:
    """One example: a file (``path``) or a row of an array (``index``) with its class."""

    path: str | None
    label: int
    split: str | None = None
    group: str | None = None
    index: int = 0
    fold: str | None = None  # a manifest's cross-validation fold (engine.train.cross_validation)


@dataclass(frozen=True)
class DatasetSummary:
    """What a data set holds, for the Data tab and ``snn-explorer data info``.

    ``counts[c]`` items of class ``c``; ``split_counts["train"][c]`` likewise per split of the
    source (empty when the source has no split of its own); durations in seconds per class
    (audio only); ``sample_rates`` maps a native rate in Hz to how many files have it.
    """

    spec: str
    kind: str
    class_names: tuple[str, ...]
    counts: np.ndarray
    split_counts: dict[str, np.ndarray]
    total_duration: np.ndarray
    mean_duration: np.ndarray
    min_duration: float
    max_duration: float
    sample_rates: dict[int, int]
    channels: dict[int, int]
    image_shape: tuple[int, ...] | None
    skipped: tuple[tuple[str, str], ...]

    @property
    def n_items(self) -> int:
        return int(self.counts.sum())

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def to_dict(self) -> dict:
        """JSON-safe dict (``snn-explorer data info --json``)."""
        return {
            "spec": self.spec,
            "kind": self.kind,
            "n_items": self.n_items,
            "n_classes": self.n_classes,
            "classes": [
                {
                    "name": name,
                    "count": int(self.counts[c]),
                    "total_duration_s": float(self.total_duration[c]),
                    "mean_duration_s": float(self.mean_duration[c]),
                }
                for c, name in enumerate(self.class_names)
            ],
            "split_counts": {k: int(v.sum()) for k, v in self.split_counts.items()},
            "min_duration_s": self.min_duration,
            "max_duration_s": self.max_duration,
            "sample_rates": {str(k): v for k, v in sorted(self.sample_rates.items())},
            "channels": {str(k): v for k, v in sorted(self.channels.items())},
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "n_skipped": self.n_skipped,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line."""
        out = [f"data set   {self.spec}", f"kind       {self.kind}"]
        out.append(f"classes    {self.n_classes}")
        out.append(f"items      {self.n_items}")
        if self.split_counts:
            parts = [f"{k} {int(v.sum())}" for k, v in self.split_counts.items()]
            out.append(f"split      {' / '.join(parts)} (from the source)")
        else:
            out.append("split      none in the source (carved by seed: stratified, by group)")
        if self.kind == "audio":
            rates = ", ".join(f"{r} Hz x{n}" for r, n in sorted(self.sample_rates.items()))
            chans = ", ".join(f"{c} ch x{n}" for c, n in sorted(self.channels.items()))
            out.append(f"rates      {rates}")
            out.append(f"channels   {chans}")
            out.append(
                f"durations  {self.min_duration:.2f}-{self.max_duration:.2f} s, "
                f"total {self.total_duration.sum() / 60:.1f} min"
            )
        elif self.image_shape:
            out.append(f"image      {'x'.join(str(s) for s in self.image_shape)}")
        out.append(f"skipped    {self.n_skipped}")
        width = max([5] + [len(n) for n in self.class_names])
        out.append("")
        header = f"{'class':<{width}}  {'count':>6}"
        header += "  " + "  ".join(f"{k:>6}" for k in self.split_counts)
        if self.kind == "audio":
            header += f"  {'mean s':>7}"
        out.append(header)
        for c, name in enumerate(self.class_names):
            row = f"{name:<{width}}  {int(self.counts[c]):>6}"
            row += "  " + "  ".join(f"{int(v[c]):>6}" for v in self.split_counts.values())
            if self.kind == "audio":
                row += f"  {self.mean_duration[c]:>7.2f}"
            out.append(row.rstrip())
        for path, reason in self.skipped[:20]:
            out.append(f"skipped: {path}: {reason}")
        if self.n_skipped > 20:
            out.append(f"skipped: ... and {self.n_skipped - 20} more")
        return out


class DataSource:
    """A data set: class names, items, skipped files, and a way to load each item.

    Attributes
    ----------
    spec : str
        The spec string it was opened from.
    kind : {"audio", "image"}
    class_names : list[str]
    items : list[Item]
    skipped : list[tuple[str, str]]
        ``(path, reason)`` for each file left out.
    group_splits : bool
        Whether carved splits keep each ``Item.group`` whole (False for FSDD, whose official
        test split shares speakers with train, so validation mirrors it).
    """

    kind = "audio"

    def __init__(self, spec, class_names, items, skipped=(), group_splits: bool = True):
        self.spec = spec
        self.class_names = list(class_names)
        self.items = list(items)
        self.skipped = list(skipped)
        self.group_splits = group_splits
        if not self.items:
            raise DataError(f"{spec}: no usable items ({len(self.skipped)} files skipped)")

    def __len__(self) -> int:
        return len(self.items)

    def labels(self) -> np.ndarray:
        """``int64 [N]`` class of each item."""
        return np.fromiter((it.label for it in self.items), dtype=np.int64, count=len(self.items))

    def load(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def sample_rate(self, i: int) -> int | None:
        """Native sample rate of item ``i`` (None for images)."""
        return None

    def summary(self) -> DatasetSummary:
        raise NotImplementedError

    def _split_counts(self) -> dict[str, np.ndarray]:
        if not any(it.split for it in self.items):
            return {}
        c = len(self.class_names)
        out = {s: np.zeros(c, dtype=np.int64) for s in SPLITS}
        for it in self.items:
            out[it.split or "train"][it.label] += 1
        return {s: v for s, v in out.items() if v.sum() > 0}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, {len(self.items)} items)"


class AudioSource(DataSource):
    """Audio files with labels. ``infos[i]`` is item ``i``'s header (rate, channels, length)."""

    kind = "audio"

    def __init__(self, spec, class_names, items, infos, skipped=(), group_splits=True):
        super().__init__(spec, class_names, items, skipped, group_splits)
        self.infos: list[AudioInfo] = list(infos)

    def load(self, i: int) -> np.ndarray:
        """Item ``i``'s waveform: mono float32 at its native rate (``sample_rate(i)``)."""
        y, _sr = load_audio(self.items[i].path)
        return y

    def sample_rate(self, i: int) -> int:
        return self.infos[i].sample_rate

    def duration(self, i: int) -> float:
        return self.infos[i].duration

    def summary(self) -> DatasetSummary:
        c = len(self.class_names)
        labels = self.labels()
        durations = np.array([inf.duration for inf in self.infos], dtype=np.float64)
        counts = np.bincount(labels, minlength=c)
        total = np.bincount(labels, weights=durations, minlength=c)
        return DatasetSummary(
            spec=self.spec,
            kind="audio",
            class_names=tuple(self.class_names),
            counts=counts,
            split_counts=self._split_counts(),
            total_duration=total,
            mean_duration=total / np.maximum(counts, 1),
            min_duration=float(durations.min()),
            max_duration=float(durations.max()),
            sample_rates=dict(Counter(inf.sample_rate for inf in self.infos)),
            channels=dict(Counter(inf.channels for inf in self.infos)),
            image_shape=None,
            skipped=tuple(self.skipped),
        )


class ImageSource(DataSource):
    """Images held in memory (``uint8 [N, H, W]``); ``load(i)`` gives float32 in [0, 1]."""

    kind = "image"

    def __init__(self, spec, class_names, items, images: np.ndarray, skipped=()):
        super().__init__(spec, class_names, items, skipped, group_splits=True)
        self.images = images

    def load(self, i: int) -> np.ndarray:
        img = self.images[self.items[i].index]
        return (img.astype(np.float32) / 255.0) if img.dtype == np.uint8 else img.astype(np.float32)

    def summary(self) -> DatasetSummary:
        c = len(self.class_names)
        counts = np.bincount(self.labels(), minlength=c)
        zeros = np.zeros(c)
        return DatasetSummary(
            spec=self.spec,
            kind="image",
            class_names=tuple(self.class_names),
            counts=counts,
            split_counts=self._split_counts(),
            total_duration=zeros,
            mean_duration=zeros,
            min_duration=0.0,
            max_duration=0.0,
            sample_rates={},
            channels={},
            image_shape=tuple(int(s) for s in self.images.shape[1:]),
            skipped=tuple(self.skipped),
        )
