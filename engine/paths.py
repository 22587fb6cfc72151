"""Where shipped resources and per-user caches live."""

from __future__ import annotations

import os
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
