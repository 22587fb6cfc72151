"""Data set sources behind one interface, written as spec strings, and their splits.

Spec strings (``open_source``):

``folder:PATH``
    One sub-folder per class (the ImageFolder convention); the folder name is the class name
    (``001 - Dog bark`` works); audio files are found recursively inside each class folder.
``csv:PATH``
    A manifest ``path,label[,split[,group]]`` (optionally with that header row); paths are
    relative to the CSV; ``split`` is train/val/test; ``group`` keeps related clips (a speaker,
    a source recording) in one split.
``fsdd:PATH``
    The Free Spoken Digit Dataset recordings folder (``{digit}_{speaker}_{index}.wav``) with
    its official split: index 0-4 test, 5-49 train.
``mnist:PATH``
    A folder with MNIST IDX files (gzipped or not). With only the 10k test set
    (``t10k-*``): the first 8000 images are train, the last 2000 test. With the 60k training
    images too, those are train and the 10k test.
``audioset:PATH``
    The output folder of the AudioSet builder (``engine.audioset.open_output``).

A bare path (no ``kind:``) is guessed: a ``.csv`` file is a manifest, a folder of
``{digit}_{speaker}_{index}.wav`` files is FSDD, a folder of IDX files is MNIST, any other
folder is ``folder:``. Files that cannot be used (empty, truncated, not audio) are listed in
``source.skipped`` with the reason and left out; the rest of the data set is still usable.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from engine.audio import AudioInfo, audio_info, is_audio_name, load_audio
from engine.errors import ConfigError, DataError

KINDS = ("folder", "csv", "fsdd", "mnist", "audioset")
SPLITS = ("train", "val", "test")
_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
    "eval": "test",
}
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)\.wav$", re.IGNORECASE)


@dataclass(frozen=True)
class Item:
    """One example: a file (``path``) or a row of an array (``index``) with its class."""

    path: str | None
    label: int
    split: str | None = None
    group: str | None = None
    index: int = 0


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


# ----------------------------------------------------------------------------- spec parsing
def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``kind:PATH`` (or guess the kind of a bare path). Raises DataError."""
    spec = (spec or "").strip()
    if not spec:
        raise DataError("no data set given (use folder:PATH, csv:PATH, fsdd:PATH or mnist:PATH)")
    kind, sep, rest = spec.partition(":")
    if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]+", kind):
        kind = kind.lower()
        if kind not in KINDS:
            raise DataError(
                f"unknown data set kind {kind!r} in {spec!r} (use {', '.join(k + ':' for k in KINDS)})"
            )
        if not rest.strip():
            raise DataError(f"{spec!r}: no path after '{kind}:'")
        return kind, os.path.expanduser(rest.strip())
    return guess_kind(spec), os.path.expanduser(spec)


def guess_kind(path: str) -> str:
    """The spec kind a bare path most likely is (``csv``, ``fsdd``, ``mnist`` or ``folder``)."""
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder")
    if os.path.isfile(path):
        if path.lower().endswith((".csv", ".tsv", ".txt")):
            return "csv"
        raise DataError(f"{path}: a data set is a folder or a .csv manifest, not a single file")
    names = [n for n in os.listdir(path) if not n.startswith(".")]
    if any(n.startswith("t10k-images") or n.startswith("train-images") for n in names):
        return "mnist"
    if os.path.isfile(os.path.join(path, "manifest.csv")) and importlib.util.find_spec(
        "engine.audioset"
    ):
        return "audioset"
    wavs = [n for n in names if n.lower().endswith(".wav")]
    if wavs and all(_FSDD_NAME.match(n) for n in wavs):
        return "fsdd"
    return "folder"


def guess_spec(path: str) -> str:
    """``kind:PATH`` for a bare path (what the GUI's browse button produces)."""
    return f"{guess_kind(path)}:{path}"


def open_source(spec: str) -> DataSource:
    """Open a data set from its spec string (see the module docstring).

    Raises
    ------
    DataError
        One line naming the spec or file: unknown kind, missing path, a class folder with no
        usable audio, a malformed manifest...
    """
    kind, path = parse_spec(spec)
    spec = spec.strip()
    if kind == "audioset":
        if importlib.util.find_spec("engine.audioset") is None:
            raise DataError(
                f"{spec}: AudioSet outputs need engine.audioset (the AudioSet builder), "
                "which this build lacks"
            )
        from engine import audioset

        if not os.path.exists(path):
            raise DataError(f"{spec}: no such folder {path}")
        return audioset.open_output(path)
    if not os.path.exists(path):
        raise DataError(f"{spec}: no such file or folder {path}")
    opener = {"folder": folder_source, "csv": csv_source, "fsdd": fsdd_source}
    if kind == "mnist":
        return mnist_source(path, spec=spec)
    return opener[kind](path, spec=spec)


# ----------------------------------------------------------------------------- audio sources
def _check_files(
    entries: list[tuple[str, int, str | None, str | None]],
) -> tuple[list[Item], list[AudioInfo], list[tuple[str, str]]]:
    """Read each file's header; keep the readable ones, list the rest with their reason."""
    items, infos, skipped = [], [], []
    for path, label, split, group in entries:
        try:
            info = audio_info(path)
        except DataError as exc:
            reason = str(exc)
            prefix = f"{path}: "
            skipped.append((path, reason[len(prefix) :] if reason.startswith(prefix) else reason))
            continue
        items.append(Item(path, label, split, group, len(items)))
        infos.append(info)
    return items, infos, skipped


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__")


def folder_source(path: str, spec: str | None = None) -> AudioSource:
    """ImageFolder layout: ``PATH/<class name>/**/<audio file>``."""
    spec = spec or f"folder:{path}"
    if not os.path.isdir(path):
        raise DataError(f"{spec}: {path} is not a folder")
    classes = sorted(
        n for n in os.listdir(path) if not _hidden(n) and os.path.isdir(os.path.join(path, n))
    )
    if not classes:
        raise DataError(f"{spec}: no class sub-folders in {path} (one folder per class expected)")
    entries, skipped = [], []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isfile(full) and is_audio_name(name):
            skipped.append((full, "audio file outside any class folder"))
    for label, name in enumerate(classes):
        files = []
        for root, dirs, names in os.walk(os.path.join(path, name)):
            dirs[:] = sorted(d for d in dirs if not _hidden(d))
            files += [os.path.join(root, n) for n in sorted(names) if not _hidden(n)]
        audio = [f for f in files if is_audio_name(f)]
        skipped += [(f, "not an audio file (unknown extension)") for f in files if f not in audio]
        if not audio:
            raise DataError(f"{spec}: class folder {name!r} holds no audio files")
        entries += [(f, label, None, None) for f in audio]
    items, infos, bad = _check_files(entries)
    skipped += bad
    counts = Counter(it.label for it in items)
    for label, name in enumerate(classes):
        if counts[label] == 0:
            raise DataError(
                f"{spec}: class folder {name!r} holds no readable audio "
                f"(all {sum(1 for e in entries if e[1] == label)} files skipped)"
            )
    return AudioSource(spec, classes, items, infos, skipped)


def fsdd_source(path: str, spec: str | None = None) -> AudioSource:
    """Free Spoken Digit Dataset: ``{digit}_{speaker}_{index}.wav``; index 0-4 test."""
    spec = spec or f"fsdd:{path}"
    if not os.path.isdir(path):
        raise DataError(f"{spec}: {path} is not a folder")
    entries, skipped = [], []
    for name in sorted(os.listdir(path)):
        if _hidden(name):
            continue
        full = os.path.join(path, name)
        m = _FSDD_NAME.match(name)
        if not m:
            if os.path.isfile(full):
                skipped.append((full, "name is not {digit}_{speaker}_{index}.wav"))
            continue
        digit, speaker, index = int(m.group(1)), m.group(2), int(m.group(3))
        entries.append((full, digit, "test" if index < 5 else "train", speaker))
    if not entries:
        raise DataError(f"{spec}: no {{digit}}_{{speaker}}_{{index}}.wav files in {path}")
    items, infos, bad = _check_files(entries)
    return AudioSource(
        spec, [str(d) for d in range(10)], items, infos, skipped + bad, group_splits=False
    )


def _label_key(name: str):
    return (0, int(name), "") if name.lstrip("-").isdigit() else (1, 0, name)


def csv_source(path: str, spec: str | None = None) -> AudioSource:
    """Manifest ``path,label[,split[,group]]`` (header optional), paths relative to the CSV."""
    spec = spec or f"csv:{path}"
    if not os.path.isfile(path):
        raise DataError(f"{spec}: {path} is not a file")
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
            rows = [
                r for r in csv.reader(fh, delimiter=delimiter) if r and any(c.strip() for c in r)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the manifest ({exc})") from None
    if not rows:
        raise DataError(f"{path}: the manifest is empty (expected rows path,label[,split])")
    columns = ["path", "label", "split", "group"]
    first = 1
    if rows[0][0].strip().lower() in ("path", "file", "filename"):
        columns = [c.strip().lower() for c in rows[0]]
        if "label" not in columns:
            raise DataError(f"{path}: header has no 'label' column")
        columns[0] = "path"
        first = 2
        rows = rows[1:]
    raw = []
    for n, row in enumerate(rows, start=first):
        rec = dict(zip(columns, (c.strip() for c in row)))
        if not rec.get("path") or not rec.get("label"):
            raise DataError(
                f"{path}, line {n}: expected path,label[,split] (got {','.join(row)!r})"
            )
        split = rec.get("split") or None
        if split is not None:
            if split.lower() not in _SPLIT_NAMES:
                raise DataError(f"{path}, line {n}: split {split!r} is not train, val or test")
            split = _SPLIT_NAMES[split.lower()]
        raw.append((rec["path"], rec["label"], split, rec.get("group") or None))
    names = sorted({r[1] for r in raw}, key=_label_key)
    index = {name: i for i, name in enumerate(names)}
    entries, skipped = [], []
    for rel, label, split, group in raw:
        full = os.path.normpath(os.path.join(base, os.path.expanduser(rel)))
        if not os.path.isfile(full):
            skipped.append((full, "no such file"))
            continue
        entries.append((full, index[label], split, group))
    items, infos, bad = _check_files(entries)
    skipped += bad
    present = {it.label for it in items}
    missing = [n for n in names if index[n] not in present]
    if missing and items:
        raise DataError(f"{path}: class {missing[0]!r} has no readable audio file")
    return AudioSource(spec, names, items, infos, skipped)


# ----------------------------------------------------------------------------- MNIST
def _find_idx(folder: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz"):
        full = os.path.join(folder, name)
        if os.path.isfile(full):
            return full
    alt = stem.replace("-idx", ".idx")  # torchvision's spelling
    for name in (alt, alt + ".gz"):
        full = os.path.join(folder, name)
        if os.path.isfile(full):
            return full
    return None


def mnist_source(path: str, spec: str | None = None) -> ImageSource:
    """MNIST IDX files: the 10k test set split 8000 train / 2000 test, or 60k train + 10k test."""
    from engine.idx import read_idx

    spec = spec or f"mnist:{path}"
    if not os.path.isdir(path):
        raise DataError(f"{spec}: {path} is not a folder")
    test_img = _find_idx(path, "t10k-images-idx3-ubyte")
    test_lab = _find_idx(path, "t10k-labels-idx1-ubyte")
    if test_img is None or test_lab is None:
        raise DataError(
            f"{spec}: no t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] in {path}"
        )
    images, labels = read_idx(test_img), read_idx(test_lab)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{spec}: image and label files do not match ({images.shape}, {labels.shape})"
        )
    train_img = _find_idx(path, "train-images-idx3-ubyte")
    train_lab = _find_idx(path, "train-labels-idx1-ubyte")
    if train_img and train_lab:
        tr_images, tr_labels = read_idx(train_img), read_idx(train_lab)
        if len(tr_images) != len(tr_labels) or tr_images.shape[1:] != images.shape[1:]:
            raise DataError(f"{spec}: the train image and label files do not match")
        splits = ["train"] * len(tr_images) + ["test"] * len(images)
        images = np.concatenate([tr_images, images])
        labels = np.concatenate([tr_labels, labels])
    else:
        n_train = int(round(len(images) * 0.8))
        splits = ["train"] * n_train + ["test"] * (len(images) - n_train)
    if labels.max() > 9 or labels.min() < 0:
        raise DataError(f"{spec}: labels outside 0-9")
    items = [Item(None, int(lab), s, None, i) for i, (lab, s) in enumerate(zip(labels, splits))]
    return ImageSource(spec, [str(d) for d in range(10)], items, images)


# ----------------------------------------------------------------------------- splits
def split_indices(
    source: DataSource,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    group_key: bool = True,
) -> dict[str, np.ndarray]:
    """Train/val/test item indices (sorted ``int64``), disjoint, covering every item.

    The source's own split wins: items marked ``test`` are the test set, and so on. A split the
    source lacks is carved out of train, stratified by class with ``seed``: ``test_fraction``
    and ``val_fraction`` are fractions of all items when the source has no split at all, of
    the train items otherwise. With ``group_key`` (and a source whose ``group_splits`` is
    true) items sharing an ``Item.group`` always land in the same split.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= float(value) < 1.0:
            raise ConfigError(f"{name}={value} must be in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError("val_fraction + test_fraction must be below 1")
    y = source.labels()
    n = len(y)
    marked = [it.split for it in source.items]
    has_split = any(marked)
    use_groups = group_key and source.group_splits
    groups = np.array(
        [
            it.group if (use_groups and it.group is not None) else f"\0{i}"
            for i, it in enumerate(source.items)
        ],
        dtype=object,
    )
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    train = np.array([i for i in range(n) if (marked[i] or "train") == "train"], dtype=np.int64)
    for name in ("test", "val"):
        own = np.array([i for i in range(n) if marked[i] == name], dtype=np.int64)
        if len(own):
            out[name] = own
            continue
        frac = test_fraction if name == "test" else val_fraction
        if not has_split and name == "val" and test_fraction > 0:
            frac = val_fraction / (1.0 - test_fraction)  # a fraction of all items, not of the rest
        train, carved = _carve(train, frac, y, groups, rng)
        out[name] = carved
    out["train"] = train
    return {k: np.sort(out[k]).astype(np.int64) for k in SPLITS}


def _carve(indices, fraction, y, groups, rng) -> tuple[np.ndarray, np.ndarray]:
    """Take about ``fraction`` of ``indices`` out, stratified by class, whole groups only."""
    indices = np.asarray(indices, dtype=np.int64)
    if fraction <= 0 or len(indices) == 0:
        return indices, np.zeros(0, dtype=np.int64)
    sub_groups = groups[indices]
    uniq, inverse = np.unique(sub_groups, return_inverse=True)
    if len(uniq) == len(indices):  # no shared groups: exact per-class stratification
        # per-class quotas by largest remainder, so the total is round(fraction * n) exactly
        classes, sizes = np.unique(y[indices], return_counts=True)
        exact = fraction * sizes
        quota = np.floor(exact).astype(np.int64)
        extra = int(round(fraction * len(indices))) - int(quota.sum())
        if extra > 0:
            order = np.lexsort((rng.random(len(classes)), -(exact - quota)))
            quota[order[:extra]] += 1
        carved = []
        for c, k in zip(classes, quota):
            members = indices[y[indices] == c]
            carved.append(rng.permutation(members)[:k])
        taken = np.concatenate(carved) if carved else np.zeros(0, dtype=np.int64)
    else:
        # greedy: visit groups in random order, biggest first, and put each in the carved set
        # while that brings the per-class counts closer to their targets
        n_classes = int(y.max()) + 1
        target = fraction * np.bincount(y[indices], minlength=n_classes)
        have = np.zeros(n_classes)
        g_counts = np.zeros((len(uniq), n_classes))
        np.add.at(g_counts, (inverse, y[indices]), 1)
        order = rng.permutation(len(uniq))
        order = order[np.argsort(-g_counts[order].sum(axis=1), kind="stable")]
        chosen = np.zeros(len(uniq), dtype=bool)
        for g in order:
            after = have + g_counts[g]
            if np.sum((after - target) ** 2) < np.sum((have - target) ** 2):
                have = after
                chosen[g] = True
        taken = indices[chosen[inverse]]
    mask = np.isin(indices, taken)
    return indices[~mask], indices[mask]


@dataclass(frozen=True)
class SplitSizes:
    """Sizes of ``split_indices`` for display."""

    train: int
    val: int
    test: int
    per_class: dict[str, np.ndarray] = field(default_factory=dict)


def split_sizes(source: DataSource, **kwargs) -> SplitSizes:
    """``split_indices`` sizes, total and per class."""
    idx = split_indices(source, **kwargs)
    y = source.labels()
    c = len(source.class_names)
    per = {k: np.bincount(y[v], minlength=c) for k, v in idx.items()}
    return SplitSizes(len(idx["train"]), len(idx["val"]), len(idx["test"]), per)
