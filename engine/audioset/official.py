"""The official AudioSet metadata files: where they are published, and getting a local copy.

:func:`resolve_input` turns a path or an official name (``eval``, ``ontology``, ...) into a local
file, from the cache or fetched once from its public address; :mod:`engine.audioset.metadata`
reads what it returns.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from engine.atomic import atomic_path
from engine.errors import DataError
from engine.paths import cache_dir, find_shared_data

# official public addresses of the metadata files (fetched only when a file is not local)
_CSV_BASE = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/"
OFFICIAL_FILES = {
    "ontology.json": "https://raw.githubusercontent.com/audioset/ontology/master/ontology.json",
    "eval_segments.csv": _CSV_BASE + "eval_segments.csv",
    "balanced_train_segments.csv": _CSV_BASE + "balanced_train_segments.csv",
    "unbalanced_train_segments.csv": _CSV_BASE + "unbalanced_train_segments.csv",
}
_ALIASES = {
    "ontology": "ontology.json",
    "eval": "eval_segments.csv",
    "balanced": "balanced_train_segments.csv",
    "balanced_train": "balanced_train_segments.csv",
    "unbalanced": "unbalanced_train_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
}


def default_audioset_dir() -> Path | None:
    """``../shared/data/audioset`` beside the checkout (or ``$SNN_SHARED_DATA/audioset``)."""
    return find_shared_data("audioset", lambda c: (c / "ontology.json").is_file())


def resolve_input(name: str | os.PathLike, *, fetch: bool | None = None) -> Path:
    """The local path of an ontology or segment file, fetching an official one if asked.

    ``name`` is a path, or an official file name or alias (``eval``, ``balanced_train``,
    ``unbalanced_train``, ``ontology``). A missing official file is looked for in the cache, then
    downloaded there from its public address unless ``fetch`` is False (or the environment sets
    ``SNN_EXPLORER_OFFLINE=1``). Raises DataError with one line saying what to fetch and where.
    """
    text = os.fspath(name)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    official = _ALIASES.get(text, path.name if path.name in OFFICIAL_FILES else None)
    if official is None:
        raise DataError(f"{text}: no such file (give the path of an AudioSet CSV or ontology.json)")
    cached = cache_dir("audioset") / official
    if cached.is_file():
        return cached
    url = OFFICIAL_FILES[official]
    if fetch is None:
        fetch = os.environ.get("SNN_EXPLORER_OFFLINE", "") not in ("1", "true", "yes")
    reason = "offline mode"
    if fetch:
        try:
            with (
                urllib.request.urlopen(url, timeout=20) as resp,
                atomic_path(cached) as tmp,
                open(tmp, "wb") as fh,
            ):
                while chunk := resp.read(1 << 16):
                    fh.write(chunk)
            return cached
        except OSError as exc:
            reason = str(getattr(exc, "reason", exc)).splitlines()[0]
    raise DataError(
        f"{text}: not found and not fetched ({reason}): download {url} and put it at {cached}"
        " (or pass its local path)"
    )
