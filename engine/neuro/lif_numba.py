"""Numba kernels for the fused LIF sequence (CPU); imported lazily by ``engine.neuro.lif``.

Arrays are 2-D ``(T, N)`` views of contiguous tensors: the time loop runs inside, over blocks of
neurons in parallel, so each element is read and written once per pass instead of once per
PyTorch operation. Arithmetic follows the reference's order (``(beta * U) + I``, then ``- thr``)
and Numba does not contract it into fused multiply-adds without ``fastmath``, so the forward pass
is bit-for-bit the reference's.

Under bfloat16 autocast the currents, spikes and their gradients may be bfloat16 (NumPy has no
such type: they arrive as their ``uint16`` bit patterns, read and written through
:mod:`engine.neuro.numba_bf16`). Membranes and all arithmetic stay float32 (or float64).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from engine.neuro.numba_bf16 import row_f32, store_row

_BLOCK = 2048
SUBTRACT, ZERO, NONE = 0, 1, 2
ARCTAN, SIGMOID, FAST_SIGMOID = 0, 1, 2


@numba.njit(parallel=True, cache=True, nogil=True)
def lif_forward(cur, static, beta, thr, prev0, reset, mem, spk, store_spikes):  # pragma: no cover
    """Fill ``mem`` and ``spk`` ``(T, N)``; ``cur`` is ``(T, N)`` or ``(1, N)`` when static.

    ``store_spikes`` False leaves ``spk`` alone (it may be a dummy): the backward pass of a
    time-constant input integrates again and needs only the membranes. ``cur`` and ``spk`` may
    be bfloat16 bits (``uint16``); ``mem`` is float.
    """
    steps, n = mem.shape
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for blk in numba.prange(nblocks):
        lo = blk * _BLOCK
        hi = min(lo + _BLOCK, n)
        m = hi - lo
        b = beta[lo:hi]
        u = prev0[lo:hi].copy()
        # r = R[t] as 0.0 / 1.0 so that the inner loops are branch-free and vectorise;
        # "- r * thr" and "* (1 - r)" are exact for r in {0, 1}
        r = np.empty(m, dtype=mem.dtype)
        for j in range(m):
            r[j] = 1.0 if u[j] >= thr else 0.0
        scratch = np.empty(m, dtype=np.float32)
        for t in range(steps):
            c = row_f32(cur[0 if static else t, lo:hi], scratch)
            mt = mem[t, lo:hi]
            if reset == SUBTRACT:
                for j in range(m):
                    v = b[j] * u[j] + c[j] - r[j] * thr
                    mt[j] = v
                    u[j] = v
                    r[j] = 1.0 if v >= thr else 0.0
            elif reset == ZERO:
                for j in range(m):
                    v = b[j] * u[j] * (1.0 - r[j]) + c[j]
                    mt[j] = v
                    u[j] = v
                    r[j] = 1.0 if v >= thr else 0.0
            else:
                for j in range(m):
                    v = b[j] * u[j] + c[j]
                    mt[j] = v
                    u[j] = v
                    r[j] = 1.0 if v >= thr else 0.0
            if store_spikes:
                store_row(spk[t, lo:hi], r, scratch)


@numba.njit(inline="always")
def _surrogate_times(kind, u, thr, k, g, a):  # pragma: no cover - jitted
    """``a[j] = g[j] * f'(u[j] - thr)`` for surrogate ``kind`` (one loop per kind: vectorises)."""
    if kind == ARCTAN:
        c = math.pi * k / 2.0
        for j in range(a.shape[0]):
            x = c * (u[j] - thr)
            a[j] = g[j] * ((k / 2.0) / (1.0 + x * x))
    elif kind == SIGMOID:
        for j in range(a.shape[0]):
            f = 1.0 / (1.0 + math.exp(-k * (u[j] - thr)))
            a[j] = g[j] * (k * f * (1.0 - f))
    else:
        for j in range(a.shape[0]):
            d = 1.0 + k * abs(u[j] - thr)
            a[j] = g[j] * ((k / 2.0) / (d * d))


@numba.njit(parallel=True, cache=True, nogil=True)
def lif_backward(
    mem,
    g_spk,
    g_mem,
    has_gs,
    has_gm,
    beta,
    thr,
    prev0,
    reset,
    kind,
    k,
    static,
    want_beta,
    d_cur,
    g_beta,
    g_mem0,
):  # pragma: no cover - jitted
    """BPTT through the sequence.

    Writes ``d_cur`` (``(T, N)``, or ``(1, N)`` summed over time when ``static``), per-neuron
    ``g_beta`` (summed over time) and ``g_mem0`` (``N``). ``g_spk`` and ``d_cur`` may be
    bfloat16 bits (``uint16``).
    """
    steps, n = mem.shape
    nblocks = (n + _BLOCK - 1) // _BLOCK
    zero_reset = reset == ZERO
    for blk in numba.prange(nblocks):
        lo = blk * _BLOCK
        hi = min(lo + _BLOCK, n)
        m = hi - lo
        b = beta[lo:hi]
        # sums over all T steps run in float64
        carry = np.zeros(m, dtype=np.float64)  # beta * d[t+1]
        acc = np.zeros(m, dtype=np.float64)
        gb = np.zeros(m, dtype=np.float64)
        a = np.zeros(m, dtype=np.float64)
        scratch = np.empty(m, dtype=np.float32)
        for t in range(steps - 1, -1, -1):
            u = mem[t, lo:hi]
            if has_gs:
                _surrogate_times(kind, u, thr, k, row_f32(g_spk[t, lo:hi], scratch), a)
            if has_gm:
                gm = g_mem[t, lo:hi]
                if has_gs:
                    for j in range(m):
                        a[j] += gm[j]
                else:
                    for j in range(m):
                        a[j] = gm[j]
            if zero_reset:
                # dU[t+1]/dU[t] = beta (1 - R[t+1]) and R[t+1] = S[t]
                for j in range(m):
                    if u[j] >= thr:
                        carry[j] = 0.0
            for j in range(m):
                a[j] += carry[j]
                carry[j] = b[j] * a[j]
            if static:
                for j in range(m):
                    acc[j] += a[j]
            else:
                store_row(d_cur[t, lo:hi], a, scratch)
            if want_beta:
                up = mem[t - 1, lo:hi] if t > 0 else prev0[lo:hi]
                if zero_reset:
                    for j in range(m):
                        if up[j] < thr:
                            gb[j] += a[j] * up[j]
                else:
                    for j in range(m):
                        gb[j] += a[j] * up[j]
        if static:
            store_row(d_cur[0, lo:hi], acc, scratch)
        for j in range(m):
            i = lo + j
            g_beta[i] = gb[j]
            g_mem0[i] = 0.0 if (zero_reset and prev0[i] >= thr) else carry[j]
