"""Numba kernels for square max pooling with one-byte winner codes (CPU, channels-last).

:mod:`engine.neuro.pool_codes` keeps, for each max-pool window, the winner's offset from the
window's corner (``i * W + j`` for row ``i`` and column ``j`` of the window in a plane ``W``
wide) instead of ``int64`` indices. ``F.max_pool2d_with_indices`` then an encoding pass, and
in the backward pass a decoding pass, a zero fill and a scatter, read and write the full-size
arrays several times; these kernels do each direction in one pass over channels-last memory
(channels innermost, so every inner loop runs over contiguous channels and vectorises).

Arrays arrive as NumPy views ``(N, H, W, C)`` of channels-last tensors; bfloat16 as ``uint16``
bits (:mod:`engine.neuro.numba_bf16`). Winners follow ``F.max_pool2d``: the first maximum in
row-major order, and a NaN wins over numbers (the last NaN, as ATen's CPU kernel does), so
codes equal the encoded indices of ``max_pool2d_with_indices`` (tests/engine/neuro/test_spikeops.py).
"""

from __future__ import annotations

import numba
import numpy as np

from engine.neuro.numba_bf16 import row_f32, store_row


@numba.njit(parallel=True, cache=True, nogil=True)
def max_pool_codes(y, k, out, code):  # pragma: no cover - jitted
    """``out[n, ph, pw, c]`` = max of the ``k x k`` window of ``y``, ``code`` its winner's offset.

    ``y`` ``(N, H, W, C)``; ``out`` and ``code`` ``(N, H // k, W // k, C)``; rows and columns
    past the last whole window are ignored, as ``F.max_pool2d`` (no padding, floor) does.
    """
    n, _, width, channels = y.shape
    hp, wp = out.shape[1], out.shape[2]
    for s in numba.prange(n):
        best = np.empty(channels, dtype=np.float32)
        arg = np.empty(channels, dtype=np.int32)
        scratch = np.empty(channels, dtype=np.float32)
        for ph in range(hp):
            for pw in range(wp):
                for c in range(channels):
                    best[c] = -np.inf
                    arg[c] = 0
                for i in range(k):
                    for j in range(k):
                        row = row_f32(y[s, ph * k + i, pw * k + j], scratch)
                        off = i * width + j
                        for c in range(channels):
                            v = row[c]
                            if v > best[c] or v != v:
                                best[c] = v
                                arg[c] = off
                store_row(out[s, ph, pw], best, scratch)
                dst = code[s, ph, pw]
                for c in range(channels):
                    dst[c] = arg[c]


@numba.njit(parallel=True, cache=True, nogil=True)
def unpool_codes(gp, code, k, gy):  # pragma: no cover - jitted
    """``gy`` ``(N, H, W, C)``: each window's winner gets the pooled gradient, the rest zero.

    Works on the arrays' bits (``gp`` and ``gy`` as unsigned integers of the float's width): a
    copy or a zero is exact in every float format.
    """
    n, height, width, channels = gy.shape
    hp, wp = gp.shape[1], gp.shape[2]
    for s in numba.prange(n):
        for h in range(height):
            ph = h // k
            i = h - ph * k
            for w in range(width):
                pw = w // k
                dst = gy[s, h, w]
                if ph >= hp or pw >= wp:
                    for c in range(channels):
                        dst[c] = 0
                    continue
                off = i * width + (w - pw * k)
                src = gp[s, ph, pw]
                cd = code[s, ph, pw]
                for c in range(channels):
                    dst[c] = src[c] if cd[c] == off else 0
