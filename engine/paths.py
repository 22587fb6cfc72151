"""Where shipped resources and per-user caches live."""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path


def resource_path(name: str) -> Path:
    """Path of a file shipped in ``resources/`` (installed as the ``engine.resources`` package)."""
    return Path(str(resources.files("engine.resources").joinpath(name)))


def cache_dir(sub: str = "") -> Path:
    """Per-user cache folder (``$SNN_EXPLORER_CACHE`` or ``~/.cache/snn-explorer``), created."""
    base = os.environ.get("SNN_EXPLORER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "snn-explorer"
    )
    path = Path(base) / sub if sub else Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(sub: str = "") -> Path:
    """Per-user data folder for fetched data sets (``$SNN_EXPLORER_DATA`` or
    ``$XDG_DATA_HOME/snn-explorer``, default ``~/.local/share/snn-explorer``), created."""
    base = os.environ.get("SNN_EXPLORER_DATA") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "snn-explorer"
    )
    path = Path(base) / sub if sub else Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data_candidates() -> list[Path]:
    """Where a shared data folder may be: ``$SNN_SHARED_DATA`` alone when set (a user or test
    that names one means it, even a missing one: first launch without shared data), else
    ``shared/data`` beside the checkout and beside the working directory."""
    if os.environ.get("SNN_SHARED_DATA"):
        return [Path(os.environ["SNN_SHARED_DATA"])]
    out = []
    checkout = Path(__file__).resolve().parents[1]  # engine/ -> the checkout (or site-packages)
    out += [checkout.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    return out


def find_shared_data(name: str, looks_right: Callable[[Path], bool] | None = None) -> Path | None:
    """The shared data set folder ``name`` (``fsdd``, ``mnist``, ``audioset``...) if present.

    ``looks_right(folder)`` may check for the files that make it usable.
    """
    for base in shared_data_candidates():
        c = base / name
        if c.is_dir() and (looks_right is None or looks_right(c)):
            return c
    return None
