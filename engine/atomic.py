"""Atomic writes: the one way the app writes a file that must never be seen half-written.

A temporary file ``.NAME.<pid>.part`` in the same folder, flushed and fsynced, then
``os.replace`` onto the target; on any error the temporary is removed and the target is left as
it was. :func:`clear_partials` removes temporaries a killed process left behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

PART_SUFFIX = ".part"


def partial_path(path: str | os.PathLike) -> Path:
    """The temporary name :func:`atomic_path` writes ``path`` through."""
    p = Path(path)
    return p.with_name(f".{p.name}.{os.getpid()}{PART_SUFFIX}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` (fsynced) atomically.

    For writers that want a file name (``np.save``, ``torch.save``, ``soundfile.write``). The
    folder must exist.
    """
    target = Path(path)
    tmp = partial_path(target)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_atomic(path: str | os.PathLike, data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``data`` (text or bytes) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            with open(tmp, "w", encoding=encoding, newline="") as fh:
                fh.write(data)
        else:
            with open(tmp, "wb") as fh:
                fh.write(data)
    return Path(path)


def write_with(path: str | os.PathLike, writer: Callable[[Path], object]) -> Path:
    """``writer(tmp)`` writes the file; it then replaces ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def is_partial(name: str) -> bool:
    """True for a temporary name :func:`partial_path` makes (``.NAME.<pid>.part``)."""
    return name.startswith(".") and name.endswith(PART_SUFFIX)


def clear_partials(folder: str | os.PathLike) -> list[str]:
    """Remove ``.*.part`` temporaries left in ``folder`` by a killed writer; their names."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for p in Path(folder).iterdir():
            if is_partial(p.name) and p.is_file():
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p.name)
    return removed
