"""Data set sources behind one interface, written as spec strings, and their splits.

Spec strings (``open_source``):

``folder:PATH``
    One sub-folder per class (the ImageFolder convention); the folder name is the class name
    (``001 - Dog bark`` works); audio files are found recursively inside each class folder.
``csv:PATH``
    A manifest ``path,label[,split[,group]]`` (optionally with that header row); paths are
    relative to the CSV; ``split`` is train/val/test; ``group`` keeps related clips (a speaker,
    a source recording) in one split. With a header, a ``fold`` column is kept on each item
    (``Item.fold``) for cross-validation.
``fsdd:PATH``
    The Free Spoken Digit Dataset recordings folder (``{digit}_{speaker}_{index}.wav``) with
    its official split: index 0-4 test, 5-49 train.
``mnist:PATH``
    A folder with MNIST IDX files (gzipped or not). With only the 10k test set
    (``t10k-*``): the first 8000 images are train, the last 2000 test. With the 60k training
    images too, those are train and the 10k test.
``audioset:PATH``
    The output folder of the AudioSet builder (``engine.audioset.selection.open_output``).
``speechcommands:PATH``
    Speech Commands as published (``engine.data.speechcommands``): word folders, the official
    ``validation_list.txt`` / ``testing_list.txt`` split.
``shd:PATH``, ``ssc:PATH``
    Spiking Heidelberg Digits / Spiking Speech Commands HDF5 files (``engine.data.spiking_sets``):
    spike trains over 700 channels, binned in time (``?bins=N&dt=S``); train with encoder
    ``spikes``.

A bare catalog name (``fsdd``, ``esc50``, ``speechcommands``, ``shd``, ``ssc``, ``kitchen20``,
``mnist``) that is not an existing path opens the set ``snn-explorer data fetch NAME`` fetched,
with the set's own split. A bare path (no ``kind:``) is guessed: a ``.csv`` file is a manifest, a folder of
``{digit}_{speaker}_{index}.wav`` files is FSDD, a folder of IDX files is MNIST, any other
folder is ``folder:``. Files that cannot be used (empty, truncated, not audio) are listed in
``source.skipped`` with the reason and left out; the rest of the data set is still usable.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter

import numpy as np

from engine.audio.load import AudioInfo, audio_info, is_audio_name
from engine.data.audioset_folder import MANIFEST_NAME, open_output
from engine.data.catalog import names as catalog_names
from engine.data.fetch import fetched_spec
from engine.data.source import AudioSource, DatasetSummary, DataSource, ImageSource, Item
from engine.data.speechcommands import speechcommands_source
from engine.data.spiking_sets import spiking_source
from engine.data.splits import SPLITS, SplitSizes, split_indices, split_sizes
from engine.errors import DataError

__all__ = [
    "KINDS",
    "SPLITS",
    "AudioSource",
    "DataSource",
    "DatasetSummary",
    "ImageSource",
    "Item",
    "SplitSizes",
    "csv_source",
    "folder_source",
    "fsdd_source",
    "guess_kind",
    "guess_spec",
    "mnist_source",
    "open_source",
    "parse_spec",
    "resolve_name",
    "split_indices",
    "split_sizes",
]

KINDS = ("folder", "csv", "fsdd", "mnist", "audioset", "speechcommands", "shd", "ssc")
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


# ----------------------------------------------------------------------------- spec parsing
def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``kind:PATH`` (or guess the kind of a bare path). Raises DataError."""
    spec = resolve_name((spec or "").strip())
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


def resolve_name(spec: str) -> str:
    """A bare catalog name (``fsdd``, ``esc50``...) that is not an existing path: the spec of
    the fetched set (DataError saying how to fetch it when it is not there)."""
    if spec.lower() in catalog_names() and not os.path.exists(spec):
        return fetched_spec(spec)
    return spec


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
    if os.path.isfile(os.path.join(path, MANIFEST_NAME)):
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
    spec = resolve_name((spec or "").strip())
    kind, path = parse_spec(spec)
    if kind in ("shd", "ssc"):
        return spiking_source(kind, path, spec=spec)
    if kind == "speechcommands":
        if not os.path.exists(path):
            raise DataError(f"{spec}: no such folder {path}")
        return speechcommands_source(path, spec=spec)
    if kind == "audioset":
        if not os.path.exists(path):
            raise DataError(f"{spec}: no such folder {path}")
        return open_output(path)
    if not os.path.exists(path):
        raise DataError(f"{spec}: no such file or folder {path}")
    opener = {"folder": folder_source, "csv": csv_source, "fsdd": fsdd_source}
    if kind == "mnist":
        return mnist_source(path, spec=spec)
    return opener[kind](path, spec=spec)


# ----------------------------------------------------------------------------- audio sources
def _check_files(
    entries: list[tuple],
) -> tuple[list[Item], list[AudioInfo], list[tuple[str, str]]]:
    """Read each file's header; keep the readable ones, list the rest with their reason.

    ``entries`` are ``(path, label, split, group[, fold])``."""
    items, infos, skipped = [], [], []
    for path, label, split, group, *fold in entries:
        try:
            info = audio_info(path)
        except DataError as exc:
            reason = str(exc)
            prefix = f"{path}: "
            skipped.append((path, reason[len(prefix) :] if reason.startswith(prefix) else reason))
            continue
        items.append(Item(path, label, split, group, len(items), fold[0] if fold else None))
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
    inner = os.path.join(path, "recordings")
    if os.path.isdir(inner) and not any(_FSDD_NAME.match(n) for n in os.listdir(path)):
        path = inner  # the data set's own root (a clone of free-spoken-digit-dataset)
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
        raw.append(
            (rec["path"], rec["label"], split, rec.get("group") or None, rec.get("fold") or None)
        )
    names = sorted({r[1] for r in raw}, key=_label_key)
    index = {name: i for i, name in enumerate(names)}
    entries, skipped = [], []
    for rel, label, split, group, fold in raw:
        full = os.path.normpath(os.path.join(base, os.path.expanduser(rel)))
        if not os.path.isfile(full):
            skipped.append((full, "no such file"))
            continue
        entries.append((full, index[label], split, group, fold))
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
    from engine.data.idx import read_idx

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
    if len(images) == 0:
        raise DataError(f"{spec}: {os.path.basename(test_img)} holds no images")
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
    if images.dtype.kind == "f" and not np.all(np.isfinite(images)):
        raise DataError(f"{spec}: the image files hold NaN or infinite pixels")
    if labels.max() > 9 or labels.min() < 0:
        raise DataError(f"{spec}: labels outside 0-9")
    items = [Item(None, int(lab), s, None, i) for i, (lab, s) in enumerate(zip(labels, splits))]
    return ImageSource(spec, [str(d) for d in range(10)], items, images)
