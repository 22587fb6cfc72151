"""Numba kernels for the fused LIF sequence (CPU); imported lazily by ``engine.lif``.

Arrays are 2-D ``(T, N)`` views of contiguous tensors: the time loop runs inside, over blocks of
neurons in parallel, so each element is read and written once per pass instead of once per
PyTorch operation. Arithmetic follows the reference's order (``(beta * U) + I``, then ``- thr``)
and Numba does not contract it into fused multiply-adds without ``fastmath``, so the forward pass
is bit-for-bit the reference's.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_BLOCK = 2048
SUBTRACT, ZERO, NONE = 0, 1, 2
ARCTAN, SIGMOID, FAST_SIGMOID = 0, 1, 2


@numba.njit(parallel=True, cache=True, nogil=True)
def lif_forward(cur, static, beta, thr, prev0, reset, mem, spk):  # pragma: no cover - jitted
    """Fill ``mem`` and ``spk`` ``(T, N)``; ``cur`` is ``(T, N)`` or ``(1, N)`` when static."""
    steps, n = mem.shape
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for blk in numba.prange(nblocks):
        lo = blk * _BLOCK
        hi = min(lo + _BLOCK, n)
        u = prev0[lo:hi].copy()
        r = np.empty(hi - lo, dtype=np.bool_)
        for j in range(hi - lo):
            r[j] = u[j] >= thr
        for t in range(steps):
            tc = 0 if static else t
            for j in range(hi - lo):
                i = lo + j
                if reset == ZERO:
                    # (beta * 0) * U + I == I: the reset neuron starts again from its input
                    v = cur[tc, i] if r[j] else beta[i] * u[j] + cur[tc, i]
                else:
                    v = beta[i] * u[j] + cur[tc, i]
                    if reset == SUBTRACT and r[j]:
                        v = v - thr
                s = v >= thr
                mem[t, i] = v
                spk[t, i] = 1.0 if s else 0.0
                u[j] = v
                r[j] = s


@numba.njit(inline="always")
def _sg(kind, x, k):  # pragma: no cover - jitted
    if kind == ARCTAN:
        a = (math.pi * k / 2.0) * x
        return (k / 2.0) / (1.0 + a * a)
    if kind == SIGMOID:
        f = 1.0 / (1.0 + math.exp(-k * x))
        return k * f * (1.0 - f)
    d = 1.0 + k * abs(x)
    return (k / 2.0) / (d * d)


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
    ``g_beta`` (summed over time) and ``g_mem0`` (``N``).
    """
    steps, n = mem.shape
    nblocks = (n + _BLOCK - 1) // _BLOCK
    for blk in numba.prange(nblocks):
        lo = blk * _BLOCK
        hi = min(lo + _BLOCK, n)
        # accumulate in float64: these sums run over all T steps
        carry = np.zeros(hi - lo, dtype=np.float64)
        acc = np.zeros(hi - lo, dtype=np.float64)
        gb = np.zeros(hi - lo, dtype=np.float64)
        for t in range(steps - 1, -1, -1):
            for j in range(hi - lo):
                i = lo + j
                u = mem[t, i]
                a = 0.0
                if has_gs:
                    a = g_spk[t, i] * _sg(kind, u - thr, k)
                if has_gm:
                    a = a + g_mem[t, i]
                # dU[t+1]/dU[t] = beta (1 - R[t+1]) with R[t+1] = S[t] for reset to zero
                c = carry[j]
                if reset == ZERO and u >= thr:
                    c = 0.0
                dv = a + c
                if static:
                    acc[j] += dv
                else:
                    d_cur[t, i] = dv
                if want_beta:
                    up = mem[t - 1, i] if t > 0 else prev0[i]
                    if not (reset == ZERO and up >= thr):
                        gb[j] += dv * up
                carry[j] = beta[i] * dv
        for j in range(hi - lo):
            i = lo + j
            if static:
                d_cur[0, i] = acc[j]
            g_beta[i] = gb[j]
            g_mem0[i] = 0.0 if (reset == ZERO and prev0[i] >= thr) else carry[j]
