"""The on-disk feature cache: one ``.npy`` per clip, keyed by file identity and parameters.

Layout: ``<root>/<FeatureConfig.cache_key()>/<key[:2]>/<key>.npy`` where ``key`` hashes the
clip file's absolute path, size and modification time (ns) and, for an augmented copy, its copy
number, seed and augmentation settings. ``<root>/<config key>/sets/<hash of all keys>.npy``
holds a whole data set built before, so an unchanged data set loads in one read. Writes are
atomic (a temporary file renamed into place): a stopped run never leaves a broken entry, and a
damaged or mismatched file is treated as missing.
"""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np

from engine.atomic import atomic_path, is_partial


def file_key(path: str, copy: int = 0, extra: str = "") -> str:
    """Cache key of a clip: absolute path, size, mtime (ns), plus the copy's identity."""
    full = os.path.abspath(path)
    st = os.stat(full)
    text = f"{full}|{st.st_size}|{st.st_mtime_ns}|{copy}|{extra}"
    return hashlib.sha1(text.encode()).hexdigest()


def cache_file(root: str, key: str) -> str:
    """Where the entry ``key`` lives under ``root`` (256 sub-folders keep folders small)."""
    return os.path.join(root, key[:2], key + ".npy")


def save_atomic(path: str, arr: np.ndarray) -> None:
    """Write ``arr`` to ``path`` through a temporary file in the same folder, then rename."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)


def clean_stale_parts(root: str, max_age_s: float = 3600.0) -> int:
    """Delete temporaries (``.NAME.<pid>.part``, older ``.part-*``) under ``root`` older than
    ``max_age_s``; return how many.

    A process killed mid-write (power cut, SIGKILL) leaves its temporary file behind; an hour
    is far longer than any single write, so an older one belongs to no live writer.
    """
    if not os.path.isdir(root):
        return 0
    cutoff = time.time() - max_age_s
    removed = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            if not (name.startswith(".part-") or is_partial(name)):
                continue
            full = os.path.join(folder, name)
            try:
                if os.stat(full).st_mtime < cutoff:
                    os.unlink(full)
                    removed += 1
            except OSError:
                pass  # another process removed or renamed it first
    return removed


def load_cached(path: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The float32 array at ``path`` if it exists and has ``shape``, else None."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # missing or damaged: recompute it
    return arr if arr.shape == shape and arr.dtype == np.float32 else None


def bundle_key(keys: list[str]) -> str:
    """Key of a whole set: the hash of its clips' keys, in order."""
    return hashlib.sha1("\n".join(keys).encode()).hexdigest()
