"""bfloat16 rows inside Numba kernels (NumPy has no bfloat16: such arrays are ``uint16`` bits).

:func:`row_f32` widens a row into a float32 scratch row (exact) and :func:`store_row` writes
float numbers back, rounded to nearest even as ``Tensor.to(torch.bfloat16)`` rounds. For float
arrays both are plain reads and copies, so one kernel serves float32, float64 and bfloat16.
Used by :mod:`engine.neuro.lif_numba` and :mod:`engine.neuro.pool_numba`.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload


def row_f32(src, scratch):  # pragma: no cover - replaced by the overload in jitted code
    """``src`` as float numbers: ``src`` itself, or its bfloat16 bits decoded into ``scratch``."""
    raise NotImplementedError


@overload(row_f32, inline="always")
def row_f32_impl(src, scratch):  # pragma: no cover - runs at compile time
    if isinstance(src.dtype, types.Integer):

        def widen(src, scratch):
            bits = scratch.view(np.uint32)
            for j in range(src.shape[0]):
                bits[j] = np.uint32(src[j]) << np.uint32(16)
            return scratch

        return widen
    return lambda src, scratch: src


def store_row(dst, vals, scratch):  # pragma: no cover - replaced by the overload in jitted code
    """``dst[:] = vals``; a bfloat16 ``dst`` (uint16 bits) gets them rounded to nearest even."""
    raise NotImplementedError


@overload(store_row, inline="always")
def store_row_impl(dst, vals, scratch):  # pragma: no cover - runs at compile time
    if isinstance(dst.dtype, types.Integer):

        def narrow(dst, vals, scratch):
            for j in range(dst.shape[0]):
                scratch[j] = vals[j]  # float64 -> float32 first, as torch's casts do
            bits = scratch.view(np.uint32)
            for j in range(dst.shape[0]):
                b = bits[j]
                if (b & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
                    dst[j] = np.uint16(0x7FC0)  # NaN, as c10::BFloat16 writes it
                else:
                    odd = (b >> np.uint32(16)) & np.uint32(1)
                    dst[j] = np.uint16((b + np.uint32(0x7FFF) + odd) >> np.uint32(16))

        return narrow

    def copy(dst, vals, scratch):
        for j in range(dst.shape[0]):
            dst[j] = vals[j]

    return copy
