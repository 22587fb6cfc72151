"""The data sets ``snn-explorer data fetch NAME`` can download: one table, one row per set.

Each row says where the published archive(s) live, how to check them (a checksum where one is
pinned here; ``None`` means "verified by size only", and the fetch says so in a warning), the
licence, the set's own split, and the spec that opens the set once extracted (``{root}`` is the
set's folder). Checksums are written as ``"sha256:HEX"`` or ``"md5:HEX"``.

Where a checksum is ``None`` it is because no stable one exists (GitHub branch and commit
archives are generated on the fly and their bytes may change) or because the sources seen
disagree (SHD/SSC: zenkelab.org publishes ``md5sums.txt`` beside the files; it is not pinned
here). Sizes are approximate download sizes for display (``approx_mb``).

``SNN_EXPLORER_FETCH_BASE`` (or the ``base_url`` argument of :func:`archive_url`) serves every
archive from ``BASE/<archive name>`` instead, e.g. a mirror or a test server on 127.0.0.1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from engine.errors import DataError

__all__ = ["CATALOG", "FETCH_BASE_ENV", "Archive", "CatalogEntry", "archive_url", "entry", "names"]

FETCH_BASE_ENV = "SNN_EXPLORER_FETCH_BASE"
UNPACK = ("zip", "tar.gz", "gunzip", "copy")


@dataclass(frozen=True)
class Archive:
    """One published file: its URL, the name it is saved (and mirrored) under, its check."""

    url: str
    name: str
    checksum: str | None
    unpack: str  # zip | tar.gz | gunzip (a single .gz file) | copy (kept as downloaded)
    size: int | None = None  # exact bytes, where known


@dataclass(frozen=True)
class CatalogEntry:
    """A fetchable data set."""

    name: str
    title: str
    archives: tuple[Archive, ...]
    licence: str
    split: str  # the set's own split or folds, in words
    spec: str  # opens the set once fetched; {root} = the set's folder
    approx_mb: int
    manifest: str | None = None  # "esc50" / "kitchen20": write a path,label,split,group CSV

    def spec_for(self, root: str | os.PathLike) -> str:
        return self.spec.format(root=os.fspath(root))


_GH = "https://github.com"
_ZENKE = "https://zenkelab.org/datasets"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist"

CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        "fsdd",
        "Free Spoken Digit Dataset (3000 clips, 10 digits, 6 speakers, 8 kHz)",
        (
            Archive(
                f"{_GH}/Jakobovski/free-spoken-digit-dataset/archive/"
                "26eb9aaf76e81b692f806f9140c2d2777410d7a1.zip",
                "free-spoken-digit-dataset.zip",
                None,
                "zip",
            ),
        ),
        "CC BY-SA 4.0 (Zohar Jackson et al., github.com/Jakobovski/free-spoken-digit-dataset)",
        "official: recording index 0-4 test, 5-49 train",
        "fsdd:{root}/recordings",
        24,
    ),
    CatalogEntry(
        "esc50",
        "ESC-50 environmental sounds (2000 clips of 5 s, 50 classes, 44.1 kHz)",
        (
            Archive(
                f"{_GH}/karolpiczak/ESC-50/archive/master.zip", "ESC-50-master.zip", None, "zip"
            ),
        ),
        "CC BY-NC 3.0 (Karol J. Piczak; clips from Freesound, see meta/esc50.csv)",
        "official 5 folds: fold 5 test, folds 1-4 train (val carved keeping source clips whole)",
        "csv:{root}/snn-explorer-manifest.csv",
        616,
        manifest="esc50",
    ),
    CatalogEntry(
        "speechcommands",
        "Speech Commands v0.02 (105,829 one-second words, 35 words, 16 kHz)",
        (
            Archive(
                "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                "speech_commands_v0.02.tar.gz",
                "sha256:af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
                "tar.gz",
            ),
        ),
        "CC BY 4.0 (Pete Warden, Google)",
        "official: validation_list.txt and testing_list.txt, the rest train",
        "speechcommands:{root}",
        2300,
    ),
    CatalogEntry(
        "shd",
        "Spiking Heidelberg Digits (10,420 spike trains, 700 channels, 20 classes)",
        tuple(
            Archive(f"{_ZENKE}/shd_{s}.h5.gz", f"shd_{s}.h5.gz", None, "gunzip")
            for s in ("train", "test")
        ),
        "CC BY 4.0 (Cramer, Stradmann, Schemmel, Zenke 2020)",
        "official: shd_train.h5 train, shd_test.h5 test (new speakers)",
        "shd:{root}",
        150,
    ),
    CatalogEntry(
        "ssc",
        "Spiking Speech Commands (~100k spike trains, 700 channels, 35 classes)",
        tuple(
            Archive(f"{_ZENKE}/ssc_{s}.h5.gz", f"ssc_{s}.h5.gz", None, "gunzip")
            for s in ("train", "valid", "test")
        ),
        "CC BY 4.0 (Cramer, Stradmann, Schemmel, Zenke 2020)",
        "official: ssc_train / ssc_valid / ssc_test",
        "ssc:{root}",
        1100,
    ),
    CatalogEntry(
        "kitchen20",
        "Kitchen20 (1070 clips of 20 kitchen sound classes, 44.1 kHz)",
        (
            Archive(
                f"{_GH}/marc-moreaux/kitchen20/archive/8bc9544507e8c3477eb8fcd3a6c841b661121220.zip",
                "kitchen20.zip",
                None,
                "zip",
            ),
        ),
        "Apache-2.0 repository (Moreaux et al. 2019); clips under their Freesound uploaders' "
        "CC licences (classes.csv)",
        "no usable folds published: splits carved keeping each source recording whole",
        "csv:{root}/snn-explorer-manifest.csv",
        400,
        manifest="kitchen20",
    ),
    CatalogEntry(
        "mnist",
        "MNIST handwritten digits (70,000 images, 28x28)",
        tuple(
            Archive(f"{_MNIST}/{n}", n, f"md5:{md5}", "copy")
            for n, md5 in (
                ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
                ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
            )
        ),
        "CC BY-SA 3.0 as commonly distributed (Y. LeCun, C. Cortes, C. Burges)",
        "official: 60k train, 10k test",
        "mnist:{root}",
        12,
    ),
)


def names() -> tuple[str, ...]:
    return tuple(e.name for e in CATALOG)


def entry(name: str) -> CatalogEntry:
    """The catalog row called ``name``. Raises DataError naming the known sets."""
    for e in CATALOG:
        if e.name == name.strip().lower():
            return e
    raise DataError(f"unknown data set {name!r} (fetchable: {', '.join(names())})")


def archive_url(archive: Archive, base_url: str | None = None) -> str:
    """Where to download ``archive`` from: ``BASE/<name>`` when a base is given (argument or
    ``$SNN_EXPLORER_FETCH_BASE``), else the published URL."""
    base = base_url or os.environ.get(FETCH_BASE_ENV)
    if base:
        return f"{base.rstrip('/')}/{archive.name}"
    return archive.url
