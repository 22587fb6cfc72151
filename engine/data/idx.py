"""MNIST IDX files (gzipped or not), read without executing anything."""

from __future__ import annotations

import gzip
import os

import numpy as np

from engine.errors import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike, limit: int | None = None) -> np.ndarray:
    """Read an IDX array (``*-idx3-ubyte[.gz]`` images or ``*-idx1-ubyte[.gz]`` labels).

    ``limit`` reads only the first N items. Raises ``DataError`` naming the file on a wrong
    magic number, an unknown type or a short file.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            magic = fh.read(4)
            if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
                raise DataError(
                    f"{path}: not an IDX file (bad magic number {magic.hex() or 'empty'})"
                )
            ndim = magic[3]
            if not 1 <= ndim <= 4:
                raise DataError(f"{path}: IDX file with {ndim} dimensions is not supported")
            dims_raw = fh.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise DataError(f"{path}: IDX header is truncated")
            dims = [int(d) for d in np.frombuffer(dims_raw, dtype=">u4")]
            if limit is not None:
                dims[0] = min(dims[0], int(limit))
            dtype = np.dtype(_DTYPES[magic[2]])
            count = int(np.prod(dims, dtype=object))
            data = _read_at_most(fh, count * dtype.itemsize)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from None
    if len(data) < count * dtype.itemsize:
        raise DataError(
            f"{path}: IDX file is truncated ({len(data)} of {count * dtype.itemsize} data bytes)"
        )
    return np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="), copy=True).reshape(dims)


def _read_at_most(fh, n: int, chunk: int = 1 << 24) -> bytes:
    """Up to ``n`` bytes, read in chunks: a header that claims gigabytes costs only what the file
    really holds (one ``read(n)`` would allocate ``n`` bytes up front)."""
    parts, got = [], 0
    while got < n:
        part = fh.read(min(chunk, n - got))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)
