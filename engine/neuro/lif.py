"""Multi-step leaky integrate-and-fire layer in torch (time-first ``[T, B, ...]``).

The update is the report's eq. 2-3, with snnTorch ``Leaky``'s exact ordering::

    R[t]   = H(U[t-1] - U_thr)                       (reset from the previous step, no gradient)
    U[t]   = beta * U[t-1] + I[t] - R[t] * U_thr      reset="subtract"
    U[t]   = beta * (1 - R[t]) * U[t-1] + I[t]       reset="zero"
    U[t]   = beta * U[t-1] + I[t]                    reset="none"
    S[t]   = H(U[t] - U_thr)                          (surrogate gradient in the backward pass)

with ``U[-1] = 0`` unless ``mem0`` is given. ``I`` is the input current (already weighted); one
step is ``dt`` and ``beta = exp(-dt / tau)``; potentials are in units of the threshold's.

``lif_multistep`` runs the whole sequence as one autograd node: the forward loop runs without
building a graph (in a Numba kernel on the CPU, ``engine.neuro.lif_numba``; one torch operation per
step elsewhere), keeps only the membrane record (which it returns anyway: spikes and resets are
recomputed from it; for a time-constant current not even that, it integrates again in the
backward pass) and the backward pass is the hand-written BPTT recursion::

    d[t] = dL/dU[t] (direct) + dL/dS[t] * f'(U[t] - U_thr) + d[t+1] * dU[t+1]/dU[t]
    dU[t+1]/dU[t] = beta                       ("subtract", "none"; the reset is detached)
                  = beta * (1 - R[t+1])        ("zero")
    dL/dI[t] = d[t],  dL/dbeta = sum_t d[t] * (1 - R[t] if "zero") * U[t-1]

Forward spikes and membranes are bit-for-bit those of ``lif_multistep_reference`` (the plain
per-step loop, autograd through every step) and of snnTorch ``Leaky``; gradients agree to float
rounding (tests/engine/test_lif_fast.py).

The equation, the plain reference loop, the fused forward/backward and the path choice stay
here, side by side; the Numba path's tensor handling is :mod:`engine.neuro.lif_cpu` and its
kernels :mod:`engine.neuro.lif_numba`, the Triton path :mod:`engine.neuro.lif_triton`.
"""

from __future__ import annotations

import torch

from engine.errors import ConfigError
from engine.neuro.lif_cpu import (
    backward_numba,
    forward_numba,
    initial_membrane,
    numba_kernels,
    work_dtype,
)
from engine.neuro.surrogate import check_name, default_slope, spike, surrogate_grad

RESETS = ("subtract", "zero", "none")
NUMBA_DTYPES = (torch.float32, torch.float64, torch.bfloat16)


def _check(reset: str, surrogate: str) -> None:
    if reset not in RESETS:
        raise ConfigError(f"reset: {reset!r} is unknown; choose one of {', '.join(RESETS)}")
    check_name(surrogate)


def lif_multistep_reference(
    cur: torch.Tensor,
    beta: float | torch.Tensor = 0.9,
    threshold: float = 1.0,
    reset: str = "subtract",
    surrogate: str = "arctan",
    slope: float | None = None,
    mem0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain per-step loop (autograd records every step); the definition the fast op meets."""
    _check(reset, surrogate)
    mem = torch.zeros_like(cur[0]) if mem0 is None else mem0
    spk_rec, mem_rec = [], []
    for t in range(cur.shape[0]):
        r = (mem >= threshold).to(cur.dtype).detach()
        if reset == "subtract":
            mem = beta * mem + cur[t] - r * threshold
        elif reset == "zero":
            mem = beta * (1.0 - r) * mem + cur[t]
        else:
            mem = beta * mem + cur[t]
        spk_rec.append(spike(mem - threshold, surrogate, slope))
        mem_rec.append(mem)
    return torch.stack(spk_rec), torch.stack(mem_rec)


def _state_shape(cur, static, beta, mem0):
    shape = cur.shape if static else cur.shape[1:]
    if mem0 is not None:
        shape = torch.broadcast_shapes(shape, mem0.shape)
    if isinstance(beta, torch.Tensor):
        shape = torch.broadcast_shapes(shape, beta.shape)
    return torch.Size(shape)


def _triton_kernels():
    """The Triton kernels module, or None when Triton does not import (the torch loop then runs)."""
    try:
        from engine.neuro import lif_triton
    except ImportError:
        return None
    return lif_triton


def _path(backend, cur, shape, static) -> str:
    """Which forward/backward pair runs: "numba" (CPU), "triton" (CUDA) or "torch"."""
    if backend == "triton" or (backend == "auto" and cur.device.type == "cuda"):
        kernels = _triton_kernels()
        dtype = work_dtype(cur.dtype)  # a bf16 current is integrated from a float32 copy
        ok = kernels is not None and kernels.available(cur.device) and dtype in kernels.DTYPES
        if ok:
            return "triton"
        if backend == "triton":
            raise ConfigError(
                "lif backend 'triton' needs Triton and a float32/float64 CUDA tensor "
                "(or TRITON_INTERPRET=1 set before triton is imported)"
            )
        return "torch"
    return "numba" if _use_numba(backend, cur, shape, static) else "torch"


def lif_path(cur: torch.Tensor, backend: str = "auto") -> str:
    """The implementation ``lif_sequence`` runs for a current like ``cur`` ``[T, ...]``:
    "numba", "triton" or "torch" (what a benchmark names as the default path)."""
    return _path(backend, cur, cur.shape[1:], False)


def _use_numba(backend, cur, shape, static):
    if backend == "torch":
        return False
    ok = (
        cur.device.type == "cpu"
        and cur.dtype in NUMBA_DTYPES
        and shape == (cur.shape if static else cur.shape[1:])
    )
    if backend == "numba" and not ok:
        raise ConfigError("lif backend 'numba' needs a float32/float64/bfloat16 CPU tensor")
    return ok and numba_kernels() is not None


def _forward_torch(cur, steps, static, beta, threshold, reset, mem0, shape, spikes=True):
    """Membrane record and float spike record ``[T, *shape]`` (no graph), one torch op at a time.

    Each step does the reference's operations in the reference's order, so results are identical
    bit for bit: ``(beta * U) + I`` then ``- thr`` where the previous step spiked (subtracting
    ``R * thr`` with ``R`` in {0, 1} is exact either way).
    """
    mem_rec = torch.empty((steps, *shape), dtype=cur.dtype, device=cur.device)
    spk = torch.empty((steps, *shape), dtype=cur.dtype, device=cur.device)
    prev = initial_membrane(mem0, shape, cur.dtype, cur.device)
    r = (prev >= threshold).to(cur.dtype)
    for t in range(steps):
        out, c = mem_rec[t], (cur if static else cur[t])
        torch.mul(prev, beta, out=out)
        if reset == "zero":
            out.mul_(1.0 - r)
        out.add_(c)
        if reset == "subtract":
            out.sub_(r, alpha=threshold)
        torch.ge(out, threshold, out=spk[t])
        prev, r = out, spk[t]
    return spk, mem_rec


def _forward_triton(cur, steps, static, beta, threshold, reset, mem0, shape, spikes=True):
    return _triton_kernels().forward(
        cur, steps, static, beta, threshold, mem0, shape, reset, spikes
    )


def _backward_triton(ctx, mem_rec, g_spk, g_mem, beta_t, mem0):
    beta, threshold, reset, surrogate, slope, _, static, _ = ctx.cfg
    want_beta = beta_t is not None and ctx.needs_input_grad[1]
    b = beta_t.detach() if beta_t is not None else beta
    args = (mem_rec, g_spk, g_mem, b, threshold, mem0, reset, surrogate, slope, static, want_beta)
    return _triton_kernels().backward(*args)


def _backward_torch(ctx, mem_rec, g_spk, g_mem, beta_t, mem0):
    beta, threshold, reset, surrogate, slope, steps, static, _ = ctx.cfg
    b = beta_t.detach() if beta_t is not None else beta
    # a[t] = dL/dU[t] from this step's own outputs; then d[t] = a[t] + c[t] * d[t+1] in place
    if g_spk is not None:
        d = surrogate_grad(surrogate, mem_rec - threshold, slope)
        d.mul_(g_spk)
        if g_mem is not None:
            d.add_(g_mem)
    else:
        d = torch.empty_like(mem_rec).copy_(g_mem)
    spk = mem_rec >= threshold if reset == "zero" else None
    for t in range(steps - 2, -1, -1):
        carry = d[t + 1] * b
        if reset == "zero":
            carry.masked_fill_(spk[t], 0.0)  # R[t+1] = S[t]
        d[t].add_(carry)
    prev0 = initial_membrane(mem0, mem_rec.shape[1:], mem_rec.dtype, mem_rec.device)
    r0 = prev0 >= threshold
    g_beta = None
    if beta_t is not None and ctx.needs_input_grad[1]:
        gb = d[1:] * mem_rec[:-1]
        if reset == "zero":
            gb.masked_fill_(spk[:-1], 0.0)
        gb = gb.sum(0)
        first = d[0] * prev0
        if reset == "zero":
            first.masked_fill_(r0, 0.0)
        g_beta = gb.add_(first)
    g_mem0 = None
    if mem0 is not None and ctx.needs_input_grad[2]:
        g_mem0 = d[0] * b
        if reset == "zero":
            g_mem0.masked_fill_(r0, 0.0)
    g_cur = d.sum(0) if static else d
    return g_cur, g_beta, g_mem0


_FORWARD = {"numba": forward_numba, "triton": _forward_triton, "torch": _forward_torch}
_BACKWARD = {"numba": backward_numba, "triton": _backward_triton, "torch": _backward_torch}


class _LIFFunction(torch.autograd.Function):
    """One autograd node for the whole sequence (see the module docstring for the recursion)."""

    @staticmethod
    def forward(ctx, cur, beta_t, mem0, beta, threshold, reset, surrogate, slope, steps, path):
        static = steps is not None
        steps = steps if static else cur.shape[0]
        b = beta_t if beta_t is not None else beta
        shape = _state_shape(cur, static, b, mem0)
        spk, mem_rec = _FORWARD[path](cur, steps, static, b, threshold, reset, mem0, shape)
        ctx.set_materialize_grads(False)
        # a time-constant current is T times smaller than the membrane record: keep it and
        # integrate again in the backward pass (cheap) instead of holding [T, ...] until then
        ctx.save_for_backward(cur if static else mem_rec, beta_t, mem0)
        ctx.cfg = (beta, threshold, reset, surrogate, slope, steps, static, path)
        ctx.cur_meta = (cur.shape, cur.dtype)
        return spk, mem_rec

    @staticmethod
    def backward(ctx, g_spk, g_mem):
        saved, beta_t, mem0 = ctx.saved_tensors
        if g_spk is None and g_mem is None:
            return (None,) * 10
        beta, threshold, reset, _, _, steps, static, path = ctx.cfg
        if static:
            b = beta_t if beta_t is not None else beta
            shape = _state_shape(saved, True, b, mem0)
            fwd = _FORWARD[path]
            with torch.no_grad():
                mem_rec = fwd(saved, steps, True, b, threshold, reset, mem0, shape, False)[1]
        else:
            mem_rec = saved
        g_cur, g_beta, g_mem0 = _BACKWARD[path](ctx, mem_rec, g_spk, g_mem, beta_t, mem0)
        cur_shape, cur_dtype = ctx.cur_meta
        if ctx.needs_input_grad[0]:
            g_cur = g_cur.sum_to_size(cur_shape).to(cur_dtype)
        else:
            g_cur = None
        if g_beta is not None:
            g_beta = g_beta.sum_to_size(beta_t.shape).to(beta_t.dtype)
        if mem0 is not None and ctx.needs_input_grad[2]:
            g_mem0 = g_mem0.sum_to_size(mem0.shape).to(mem0.dtype)
        else:
            g_mem0 = None
        return g_cur, g_beta, g_mem0, None, None, None, None, None, None, None


def _static_source(cur: torch.Tensor) -> torch.Tensor:
    """The ``[B, ...]`` tensor that ``cur`` (stride 0 over time) repeats."""
    base = cur._base
    if (
        base is not None
        and base.shape == cur.shape[1:]
        and base.stride() == cur.stride()[1:]
        and base.storage_offset() == cur.storage_offset()
        and base.dtype == cur.dtype
    ):
        return base  # the autograd graph then skips the expand: same gradient, no [T, ...] copy
    return cur[0]


def lif_sequence(
    cur: torch.Tensor,
    beta: float | torch.Tensor = 0.9,
    threshold: float = 1.0,
    reset: str = "subtract",
    surrogate: str = "arctan",
    slope: float | None = None,
    mem0: torch.Tensor | None = None,
    *,
    steps: int | None = None,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``lif_multistep`` with two extra knobs.

    Parameters
    ----------
    steps : int, optional
        When given, ``cur`` is ONE step's current ``[B, ...]`` applied at every one of ``steps``
        steps (direct-current input): neither the current nor its gradient is expanded over time.
    backend : {"auto", "numba", "triton", "torch"}
        "numba" runs the time loop in a compiled kernel (CPU, float32/float64); "triton" in one
        Triton launch per pass (CUDA, float32/float64; ``engine.neuro.lif_triton``); "torch" one
        torch operation per step (any device); "auto" picks Numba on the CPU and Triton on CUDA
        where they apply.
    """
    _check(reset, surrogate)
    if backend not in ("auto", "numba", "triton", "torch"):
        raise ConfigError(
            f"lif backend: {backend!r} is unknown; choose auto, numba, triton or torch"
        )
    k = default_slope(surrogate) if slope is None else float(slope)
    out_dtype = cur.dtype
    if cur.dtype == torch.float16:
        cur = cur.float()
    static = steps is not None
    n_steps = int(steps) if static else cur.shape[0]
    if not static and cur.dim() > 1 and cur.shape[0] > 1 and cur.stride(0) == 0:
        # a time-constant current expanded over T (direct input): integrate the one step's
        # current; its gradient is then summed over time inside the kernel, not materialised
        cur, static = _static_source(cur), True
    work = work_dtype(cur.dtype)
    beta_t = beta if isinstance(beta, torch.Tensor) else None
    if beta_t is not None and beta_t.dtype != work:
        beta_t = beta_t.to(work)
    b = beta_t if beta_t is not None else float(beta)
    shape = _state_shape(cur, static, b, mem0)
    if n_steps == 0:
        empty = cur.new_empty((0, *shape), dtype=work)
        return empty.to(out_dtype), empty
    path = _path(backend, cur, shape, static)
    if cur.dtype == torch.bfloat16 and path != "numba":
        cur = cur.float()  # the Numba kernels read and write bf16 themselves, float32 inside
    needs_grad = torch.is_grad_enabled() and (
        cur.requires_grad
        or (beta_t is not None and beta_t.requires_grad)
        or (mem0 is not None and mem0.requires_grad)
    )
    if not needs_grad:
        with torch.no_grad():
            spk, mem_rec = _FORWARD[path](
                cur, n_steps, static, b, float(threshold), reset, mem0, shape
            )
        return spk.to(out_dtype), mem_rec
    spk, mem_rec = _LIFFunction.apply(
        cur,
        beta_t,
        mem0,
        0.0 if beta_t is not None else float(beta),
        float(threshold),
        reset,
        surrogate,
        k,
        n_steps if static else None,
        path,
    )
    return spk.to(out_dtype), mem_rec


def lif_multistep(
    cur: torch.Tensor,
    beta: float | torch.Tensor = 0.9,
    threshold: float = 1.0,
    reset: str = "subtract",
    surrogate: str = "arctan",
    slope: float | None = None,
    mem0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a LIF population over all time steps (fused: one autograd node, BPTT by hand).

    Parameters
    ----------
    cur : tensor ``[T, B, ...]``
        Input current at every step.
    beta : float or tensor broadcastable to ``cur[0]``
        Membrane decay per step, ``exp(-dt / tau)``; a tensor that requires grad gets one.
    threshold : float
        Firing threshold ``U_thr``.
    reset : {"subtract", "zero", "none"}
    surrogate : name in ``engine.neuro.surrogate.SURROGATES``
        Derivative used for ``dS/dU`` in the backward pass; ``slope`` its steepness (None =
        the surrogate's default).
    mem0 : tensor broadcastable to ``cur[0]``, optional
        Membrane before the first step (zero when None).

    Returns
    -------
    spikes, membrane : tensors ``[T, B, ...]``
        Spikes are 0/1 in ``cur``'s dtype. Half-precision currents (bf16/fp16 autocast) are
        integrated in float32 and the membrane is returned in float32: an 8-bit mantissa cannot
        hold a membrane summed over many steps. On the CPU the kernels read a bfloat16 current
        and write bfloat16 spikes and current gradients directly (no float32 copies).

    See ``lif_sequence`` for a time-constant current and the choice of backend.
    """
    return lif_sequence(cur, beta, threshold, reset, surrogate, slope, mem0)
