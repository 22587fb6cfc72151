"""The CPU side of :mod:`engine.neuro.lif`: tensors in and out of the Numba kernels.

The kernels (:mod:`engine.neuro.lif_numba`, imported lazily: Numba is optional) see every tensor
as a flat ``(T, N)`` array; this module lays the currents, membranes, spikes and gradients out
for them and back, in the memory order of the input current, and holds the lock every parallel
Numba kernel of the engine launches under.
"""

from __future__ import annotations

import threading

import torch

# Numba's fallback threading layer ("workqueue") aborts the process when two threads launch
# parallel kernels at once (training on a worker thread while the Live tab classifies): the
# kernels take turns. Each one is parallel inside, so this costs nothing on a busy CPU. Every
# parallel Numba kernel of the engine (also engine.neuro.pool_codes' pooling) launches under it.
KERNEL_LOCK = threading.Lock()
_RESET_ID = {"subtract": 0, "zero": 1, "none": 2}
_SURROGATE_ID = {"arctan": 0, "sigmoid": 1, "fast_sigmoid": 2}


def numba_kernels():
    """The Numba kernels module, or None when Numba is missing (the torch loop then runs)."""
    try:
        from engine.neuro import lif_numba as _lif_kernels
    except ImportError:  # pragma: no cover - numba ships with librosa
        return None
    return _lif_kernels


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype membranes and arithmetic use for a current of ``dtype``."""
    return torch.float32 if dtype == torch.bfloat16 else dtype


def _np_view(x: torch.Tensor):
    """A contiguous tensor as a NumPy array; bfloat16 as its uint16 bit patterns."""
    return (x.view(torch.uint16) if x.dtype == torch.bfloat16 else x).numpy()


def initial_membrane(mem0, shape, dtype, device):
    """The membrane before the first step: ``mem0`` broadcast to ``shape``, or zeros."""
    if mem0 is None:
        return torch.zeros(shape, dtype=dtype, device=device)
    return mem0.detach().to(dtype).expand(shape)


# The Numba kernels see every tensor as a flat (T, N) array. N runs in the memory order of the
# input current (e.g. channels-last), and the outputs are laid out the same way, so a
# channels-last current gives channels-last spikes for the next convolution without a copy.


def _memory_order(x: torch.Tensor) -> tuple[int, ...]:
    """Dimensions of ``x`` from the slowest-varying to the fastest in memory."""
    return tuple(sorted(range(x.dim()), key=lambda d: (-x.stride(d), d)))


def _flat_state(x: torch.Tensor, order) -> torch.Tensor:
    return x.permute(order).contiguous().view(-1)


def _flat_seq(x: torch.Tensor, order) -> torch.Tensor:
    return x.permute(0, *(d + 1 for d in order)).contiguous().view(x.shape[0], -1)


def _empty_seq(steps, shape, order, dtype):
    """``[steps, *shape]`` tensor laid out in ``order``, and its flat ``(steps, N)`` view."""
    buf = torch.empty((steps, *(shape[d] for d in order)), dtype=dtype)
    inverse = sorted(range(len(order)), key=lambda i: order[i])
    return buf.permute(0, *(i + 1 for i in inverse)), buf.view(steps, -1)


def _np_scalar(value, dtype):
    import numpy as np

    return np.float64(value) if dtype == torch.float64 else np.float32(value)


def forward_numba(cur, steps, static, beta, threshold, reset, mem0, shape, spikes=True):
    kernels = numba_kernels()
    order = _memory_order(cur if static else cur[0])
    cur = cur.detach()
    work = work_dtype(cur.dtype)  # membranes; spikes come in the current's dtype
    c = _flat_state(cur, order).view(1, -1) if static else _flat_seq(cur, order)
    mem_rec, mem_flat = _empty_seq(steps, shape, order, work)
    if spikes:
        spk, spk_flat = _empty_seq(steps, shape, order, cur.dtype)
    else:
        spk, spk_flat = None, torch.zeros((1, 1), dtype=cur.dtype)
    b = beta.detach().to(work).expand(shape) if isinstance(beta, torch.Tensor) else None
    b = _flat_state(b, order) if b is not None else torch.full((shape.numel(),), beta, dtype=work)
    with KERNEL_LOCK:
        kernels.lif_forward(
            _np_view(c),
            static,
            b.to(work).numpy(),
            _np_scalar(threshold, work),
            _flat_state(initial_membrane(mem0, shape, work, cur.device), order).numpy(),
            _RESET_ID[reset],
            mem_flat.numpy(),
            _np_view(spk_flat),
            spikes,
        )
    return spk, mem_rec


def backward_numba(ctx, mem_rec, g_spk, g_mem, beta_t, mem0):
    beta, threshold, reset, surrogate, slope, steps, static, _ = ctx.cfg
    kernels = numba_kernels()
    shape = mem_rec.shape[1:]
    dtype = mem_rec.dtype
    # bfloat16 currents get bfloat16 gradients, written by the kernel (as autocast would)
    cur_dtype = ctx.cur_meta[1] if ctx.cur_meta[1] == torch.bfloat16 else dtype
    order = _memory_order(mem_rec[0])
    dummy = torch.zeros((1, 1), dtype=dtype)
    if g_spk is None:
        gs = dummy
    else:
        g_spk = g_spk if g_spk.dtype == torch.bfloat16 == cur_dtype else g_spk.to(dtype)
        gs = _flat_seq(g_spk, order)
    gm = dummy if g_mem is None else _flat_seq(g_mem.to(dtype), order)
    d_cur, d_flat = _empty_seq(1 if static else steps, shape, order, cur_dtype)
    g_beta, g_beta_flat = _empty_seq(1, shape, order, dtype)
    g_mem0, g_mem0_flat = _empty_seq(1, shape, order, dtype)
    want_beta = beta_t is not None and ctx.needs_input_grad[1]
    b = beta_t.detach().expand(shape) if beta_t is not None else None
    b = _flat_state(b, order) if b is not None else torch.full((shape.numel(),), beta, dtype=dtype)
    with KERNEL_LOCK:
        kernels.lif_backward(
            _flat_seq(mem_rec, order).numpy(),
            _np_view(gs),
            gm.numpy(),
            g_spk is not None,
            g_mem is not None,
            b.to(dtype).numpy(),
            _np_scalar(threshold, dtype),
            _flat_state(initial_membrane(mem0, shape, dtype, mem_rec.device), order).numpy(),
            _RESET_ID[reset],
            _SURROGATE_ID[surrogate],
            float(slope),
            static,
            want_beta,
            _np_view(d_flat),
            g_beta_flat.view(-1).numpy(),
            g_mem0_flat.view(-1).numpy(),
        )
    g_cur = d_cur[0] if static else d_cur
    return g_cur, g_beta[0] if want_beta else None, g_mem0[0]
