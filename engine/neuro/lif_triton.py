"""Triton kernels for the fused LIF sequence (CUDA); imported lazily by ``engine.neuro.lif``.

One launch runs the whole time loop: each program owns a block of neurons and steps through
``T`` inside the kernel, so a membrane is read and written once per step instead of once per
PyTorch operation (the torch loop launches ~4 kernels per step). The backward launch is the
same BPTT recursion as ``engine.neuro.lif_numba.lif_backward`` (see ``engine.neuro.lif``).

Arrays are flat ``(T, N)`` contiguous tensors; per-neuron ``beta`` and ``prev0`` are ``(N,)``.
The forward arithmetic keeps the reference's order (``(beta * U) + I`` then ``- R * thr``) and
the launch turns off fused multiply-adds, so spikes and membranes are those of the torch loop.
With ``TRITON_INTERPRET=1`` set before ``triton`` is imported the kernels run on CPU tensors
(slowly): that is how they are tested on machines without a GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 256
SUBTRACT, ZERO, NONE = 0, 1, 2
ARCTAN, SIGMOID, FAST_SIGMOID = 0, 1, 2
RESET_ID = {"subtract": SUBTRACT, "zero": ZERO, "none": NONE}
SURROGATE_ID = {"arctan": ARCTAN, "sigmoid": SIGMOID, "fast_sigmoid": FAST_SIGMOID}
DTYPES = (torch.float32, torch.float64)


@triton.jit
def _lif_forward_kernel(
    cur_ptr,
    cur_step,  # elements between two steps of ``cur``: 0 for a time-constant current
    beta_ptr,
    prev0_ptr,
    thr_ptr,
    mem_ptr,
    spk_ptr,
    n,
    steps,
    RESET: tl.constexpr,
    STORE_SPIKES: tl.constexpr,
    BLOCK: tl.constexpr,
):  # pragma: no cover - compiled (or interpreted) by Triton
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    thr = tl.load(thr_ptr)
    b = tl.load(beta_ptr + offs, mask=mask, other=0.0)
    u = tl.load(prev0_ptr + offs, mask=mask, other=0.0)
    zero = tl.zeros_like(u)
    one = zero + 1.0
    r = tl.where(u >= thr, one, zero)
    c_p = cur_ptr + offs
    m_p = mem_ptr + offs
    s_p = spk_ptr + offs
    for _t in range(steps):
        c = tl.load(c_p, mask=mask, other=0.0)
        if RESET == 0:
            v = b * u + c - r * thr
        elif RESET == 1:
            v = b * u * (one - r) + c
        else:
            v = b * u + c
        tl.store(m_p, v, mask=mask)
        r = tl.where(v >= thr, one, zero)
        if STORE_SPIKES:
            tl.store(s_p, r, mask=mask)
            s_p += n
        u = v
        c_p += cur_step
        m_p += n


@triton.jit
def _lif_backward_kernel(
    mem_ptr,
    gs_ptr,
    gm_ptr,
    beta_ptr,
    prev0_ptr,
    thr_ptr,
    d_ptr,
    gbeta_ptr,
    gmem0_ptr,
    n,
    steps,
    k,
    RESET: tl.constexpr,
    KIND: tl.constexpr,
    HAS_GS: tl.constexpr,
    HAS_GM: tl.constexpr,
    STATIC: tl.constexpr,
    WANT_BETA: tl.constexpr,
    BLOCK: tl.constexpr,
):  # pragma: no cover - compiled (or interpreted) by Triton
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    thr = tl.load(thr_ptr)
    b = tl.load(beta_ptr + offs, mask=mask, other=0.0)
    p0 = tl.load(prev0_ptr + offs, mask=mask, other=0.0)
    zero = tl.zeros_like(p0)
    carry = zero  # beta * d[t+1] (masked for reset "zero")
    acc = zero
    gb = zero
    last = (steps - 1).to(tl.int64) * n
    m_p = mem_ptr + last + offs
    gs_p = gs_ptr + last + offs
    gm_p = gm_ptr + last + offs
    d_p = d_ptr + last + offs
    for i in range(steps):
        t = steps - 1 - i
        u = tl.load(m_p, mask=mask, other=0.0)
        a = zero
        if HAS_GS:
            g = tl.load(gs_p, mask=mask, other=0.0)
            x = u - thr
            if KIND == 0:
                y = (3.141592653589793 * k / 2.0) * x
                f = (k / 2.0) / (1.0 + y * y)
            elif KIND == 1:
                s = 1.0 / (1.0 + tl.exp(-k * x))
                f = k * s * (1.0 - s)
            else:
                dd = 1.0 + k * tl.abs(x)
                f = (k / 2.0) / (dd * dd)
            a = g * f.to(g.dtype)
            gs_p -= n
        if HAS_GM:
            a = a + tl.load(gm_p, mask=mask, other=0.0)
            gm_p -= n
        if RESET == 1:
            # dU[t+1]/dU[t] = beta (1 - R[t+1]) and R[t+1] = S[t]
            carry = tl.where(u >= thr, zero, carry)
        a = a + carry
        carry = b * a
        if STATIC:
            acc += a
        else:
            tl.store(d_p, a, mask=mask)
            d_p -= n
        if WANT_BETA:
            prev = tl.load(m_p - n, mask=mask & (t > 0), other=0.0)
            up = tl.where(t > 0, prev, p0)
            if RESET == 1:
                gb += tl.where(up < thr, a * up, zero)
            else:
                gb += a * up
        m_p -= n
    if STATIC:
        tl.store(d_ptr + offs, acc, mask=mask)
    if WANT_BETA:
        tl.store(gbeta_ptr + offs, gb, mask=mask)
    if RESET == 1:
        carry = tl.where(p0 >= thr, zero, carry)
    tl.store(gmem0_ptr + offs, carry, mask=mask)


def _grid(n: int):
    return (triton.cdiv(max(n, 1), BLOCK),)


def _per_neuron(value, shape, dtype, device) -> torch.Tensor:
    """``value`` (float or tensor broadcastable to ``shape``) as a contiguous ``(N,)`` tensor."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(dtype).expand(shape).contiguous().view(-1)
    return torch.full((shape.numel(),), float(value), dtype=dtype, device=device)


def _launch_options(device: torch.device) -> dict:
    # no fused multiply-adds: the forward pass must round like the torch loop, bit for bit
    return {"enable_fp_fusion": False} if device.type == "cuda" else {}


def forward(cur, steps, static, beta, threshold, mem0, shape, reset, spikes=True):
    """Spikes (float, or None when ``spikes`` is False) and membranes ``[steps, *shape]``.

    ``cur`` is ``[steps, ...]`` or, when ``static``, one step's current, broadcastable to
    ``shape``; ``beta`` a float or a tensor broadcastable to ``shape``; ``mem0`` None or a
    tensor broadcastable to ``shape``.
    """
    dtype, dev = cur.dtype, cur.device
    n = shape.numel()
    cur = cur.detach()
    if static:
        c = cur.expand(shape).contiguous().view(1, -1)
    else:
        c = cur.expand((steps, *shape)).contiguous().view(steps, -1)
    mem = torch.empty((steps, *shape), dtype=dtype, device=dev)
    spk = torch.empty((steps, *shape), dtype=dtype, device=dev) if spikes else None
    prev0 = _per_neuron(0.0 if mem0 is None else mem0, shape, dtype, dev)
    _lif_forward_kernel[_grid(n)](
        c,
        0 if static else n,
        _per_neuron(beta, shape, dtype, dev),
        prev0,
        torch.full((1,), threshold, dtype=dtype, device=dev),
        mem,
        spk if spikes else mem,
        n,
        steps,
        RESET=RESET_ID[reset],
        STORE_SPIKES=spikes,
        BLOCK=BLOCK,
        **_launch_options(dev),
    )
    return spk, mem


def backward(
    mem_rec, g_spk, g_mem, beta, threshold, mem0, reset, surrogate, slope, static, want_beta
):
    """Gradients for the current (``[T, *shape]``, or ``shape`` summed over time when
    ``static``), for a per-neuron beta (``shape``; None unless ``want_beta``) and for the
    initial membrane (``shape``)."""
    steps, shape = mem_rec.shape[0], mem_rec.shape[1:]
    dtype, dev = mem_rec.dtype, mem_rec.device
    n = shape.numel()
    mem = mem_rec.contiguous()
    gs = g_spk.to(dtype).contiguous() if g_spk is not None else mem
    gm = g_mem.to(dtype).contiguous() if g_mem is not None else mem
    d = torch.empty((1, *shape) if static else (steps, *shape), dtype=dtype, device=dev)
    g_beta = torch.empty(shape, dtype=dtype, device=dev) if want_beta else d
    g_mem0 = torch.empty(shape, dtype=dtype, device=dev)
    _lif_backward_kernel[_grid(n)](
        mem,
        gs,
        gm,
        _per_neuron(beta, shape, dtype, dev),
        _per_neuron(0.0 if mem0 is None else mem0, shape, dtype, dev),
        torch.full((1,), threshold, dtype=dtype, device=dev),
        d,
        g_beta,
        g_mem0,
        n,
        steps,
        float(slope),
        RESET=RESET_ID[reset],
        KIND=SURROGATE_ID[surrogate],
        HAS_GS=g_spk is not None,
        HAS_GM=g_mem is not None,
        STATIC=static,
        WANT_BETA=want_beta,
        BLOCK=BLOCK,
    )
    return (d[0] if static else d), (g_beta if want_beta else None), g_mem0


def available(device: torch.device) -> bool:
    """Whether the kernels can run on tensors of ``device`` (CUDA, or any in interpreter mode)."""
    return device.type == "cuda" or _interpreted()


def _interpreted() -> bool:
    import os

    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
