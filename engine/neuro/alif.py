"""Adaptive leaky integrate-and-fire neurons (ALIF, Bellec et al. 2018 "LSNN"), time-first.

One step ``dt`` per input frame; potentials in units of the base threshold's. With the previous
step's spikes ``S[t-1]`` (reset and adaptation both look one step back, like
:mod:`engine.neuro.lif`)::

    Th[t-1] = thr + adapt * a[t-1]                       (threshold the previous spike crossed)
    U[t]    = beta * U[t-1] + I[t] - S[t-1] * Th[t-1]    reset="subtract" (reset term detached)
    U[t]    = beta * (1 - S[t-1]) * U[t-1] + I[t]        reset="zero"
    a[t]    = rho * a[t-1] + S[t-1]                      threshold adaptation, its own decay rho
    Th[t]   = thr + adapt * a[t]
    S[t]    = H(U[t] - Th[t])                            (surrogate gradient in the backward pass)

``beta = exp(-dt / tau_mem)`` and ``rho = exp(-dt / tau_adapt)`` (rho near 1: the threshold
remembers firing over many frames, which is what lets a recurrent network hold a word's onset
until its end). ``adapt = 0`` gives a plain LIF (``S`` equal to :func:`lif_multistep`'s). The
input current ``I[t]`` may include a recurrent term ``W_rec S[t-1]`` (:func:`alif_sequence`).

:func:`alif_step` is the pure step function; :func:`alif_sequence` the plain loop over ``T``
(autograd through every step), the definition; :func:`alif_fused` the same sequence as one
autograd node (forward loop without a graph, hand-written BPTT; spikes identical, gradients
equal to float rounding, tests/engine/neuro/test_alif.py) and :class:`ALIF` the module holding
the parameters, which trains through the fused path. BPTT of the fused path, with
``v[t] = U[t] - Th[t]`` and ``f'`` the surrogate derivative::

    dS[t] = gS[t] + dU[t+1] W_rec + da[t+1]          (recurrence and adaptation see S[t])
    dv[t] = dS[t] f'(v[t])
    dU[t] = gU[t] + dv[t] + dU[t+1] beta (1 - S[t] for "zero")
    da[t] = ga[t] - adapt dv[t] + rho da[t+1]
    dI[t] = dU[t],  dW_rec = sum_t dU[t]^T S[t-1],  dbeta = sum_t dU[t] (1 - S[t-1]) U[t-1]

The initial state gets no gradient (a stream's carried state is a constant).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ConfigError
from engine.neuro.surrogate import check_name, default_slope, spike, surrogate_grad

ALIF_RESETS = ("subtract", "zero")


class ALIFState(NamedTuple):
    """Per-neuron state ``[B, N]``: membrane ``mem``, adaptation ``adapt`` and last spikes."""

    mem: torch.Tensor
    adapt: torch.Tensor
    spk: torch.Tensor


class ALIFParams(NamedTuple):
    """``beta`` (float or scalar tensor), ``rho``, base ``threshold``, ``adapt`` (threshold
    increase per unit of ``a``), ``reset``, ``surrogate`` and its ``slope``."""

    beta: float | torch.Tensor = 0.9
    rho: float = 0.97
    threshold: float = 1.0
    adapt: float = 1.8
    reset: str = "subtract"
    surrogate: str = "arctan"
    slope: float | None = None


def alif_init(shape, dtype=torch.float32, device=None) -> ALIFState:
    """The resting state (all zeros) for a population of ``shape`` ``[B, N]``."""
    z = torch.zeros(shape, dtype=dtype, device=device)
    return ALIFState(z, z.clone(), z.clone())


def alif_step(cur: torch.Tensor, state: ALIFState, p: ALIFParams):
    """One step: ``(spikes [B, N], new state)`` for the input current ``cur [B, N]``."""
    mem, a, s_prev = state
    r = s_prev.detach()
    if p.reset == "subtract":
        mem = p.beta * mem + cur - r * (p.threshold + p.adapt * a.detach())
    else:
        mem = p.beta * (1.0 - r) * mem + cur
    a = p.rho * a + s_prev
    s = spike(mem - (p.threshold + p.adapt * a), p.surrogate, p.slope)
    return s, ALIFState(mem, a, s)


def alif_sequence(
    cur: torch.Tensor,
    p: ALIFParams,
    state: ALIFState | None = None,
    rec_weight: torch.Tensor | None = None,
):
    """Run ``T`` steps of ``cur [T, B, N]``; ``rec_weight [N, N]`` adds ``W_rec S[t-1]``.

    Returns ``(spikes, membranes, final state)``, the records ``[T, B, N]``.
    """
    if state is None:
        state = alif_init(cur.shape[1:], cur.dtype, cur.device)
    spk_rec, mem_rec = [], []
    for t in range(cur.shape[0]):
        c = cur[t]
        if rec_weight is not None:
            c = c + F.linear(state.spk, rec_weight)
        s, state = alif_step(c, state, p)
        spk_rec.append(s)
        mem_rec.append(state.mem)
    if not spk_rec:
        empty = cur.new_empty(cur.shape)
        return empty, empty, state
    return torch.stack(spk_rec), torch.stack(mem_rec), state


class _ALIFFunction(torch.autograd.Function):
    """The whole sequence as one autograd node (see the module docstring for the recursion)."""

    @staticmethod
    def forward(ctx, cur, weight, beta_t, mem0, a0, s0, p: ALIFParams):
        beta = beta_t if beta_t is not None else p.beta
        steps = cur.shape[0]
        mem_rec, a_rec, spk = (torch.empty_like(cur) for _ in range(3))
        mem, a, s = mem0, a0, s0
        for t in range(steps):
            c = cur[t] if weight is None else cur[t] + F.linear(s, weight)
            if p.reset == "subtract":
                m = beta * mem + c - s * (p.threshold + p.adapt * a)
            else:
                m = beta * (1.0 - s) * mem + c
            a = torch.add(p.rho * a, s, out=a_rec[t])
            mem = mem_rec[t].copy_(m)
            spk[t] = (mem - (p.threshold + p.adapt * a)) >= 0
            s = spk[t]
        ctx.save_for_backward(weight, beta_t, mem_rec, a_rec, spk, mem0, s0)
        ctx.p = p
        return spk, mem_rec, a_rec

    @staticmethod
    def backward(ctx, g_spk, g_mem, g_a):
        weight, beta_t, mem_rec, a_rec, spk, mem0, s0 = ctx.saved_tensors
        p = ctx.p
        beta = beta_t.detach() if beta_t is not None else p.beta
        steps = mem_rec.shape[0]
        v = mem_rec - (p.threshold + p.adapt * a_rec)
        slope = default_slope(p.surrogate) if p.slope is None else p.slope
        f = surrogate_grad(p.surrogate, v, slope)
        d_u = torch.empty_like(mem_rec)
        next_u = next_a = None
        for t in range(steps - 1, -1, -1):
            ds = g_spk[t].clone() if g_spk is not None else torch.zeros_like(f[t])
            if next_u is not None:
                if weight is not None:
                    ds.add_(next_u @ weight)
                ds.add_(next_a)
            dv = ds.mul_(f[t])
            du = d_u[t]
            du.copy_(dv)
            if g_mem is not None:
                du.add_(g_mem[t])
            da = dv * -p.adapt
            if g_a is not None:
                da.add_(g_a[t])
            if next_u is not None:
                carry = next_u * beta
                if p.reset == "zero":
                    carry.mul_(1.0 - spk[t])
                du.add_(carry)
                da.add_(next_a, alpha=p.rho)
            next_u, next_a = du, da
        s_prev = torch.cat([s0.unsqueeze(0), spk[:-1]])
        g_w = g_beta = None
        if weight is not None and ctx.needs_input_grad[1]:
            g_w = d_u.flatten(0, -2).t() @ s_prev.flatten(0, -2)
        if beta_t is not None and ctx.needs_input_grad[2]:
            u_prev = torch.cat([mem0.unsqueeze(0), mem_rec[:-1]])
            if p.reset == "zero":
                u_prev = u_prev * (1.0 - s_prev)
            g_beta = (d_u * u_prev).sum().reshape(beta_t.shape)
        return d_u, g_w, g_beta, None, None, None, None


def alif_fused(
    cur: torch.Tensor,
    p: ALIFParams,
    state: ALIFState | None = None,
    rec_weight: torch.Tensor | None = None,
):
    """:func:`alif_sequence` as one autograd node: ``(spikes, membranes, final state)``."""
    if state is None:
        state = alif_init(cur.shape[1:], cur.dtype, cur.device)
    if cur.shape[0] == 0:
        return cur.new_empty(cur.shape), cur.new_empty(cur.shape), state
    beta_t = p.beta if isinstance(p.beta, torch.Tensor) else None
    mem0, a0, s0 = (v.detach().to(cur.dtype) for v in state)
    spk, mem, a = _ALIFFunction.apply(cur, rec_weight, beta_t, mem0, a0, s0, p)
    return spk, mem, ALIFState(mem[-1], a[-1], spk[-1])


def _number(name: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"model_options.{name}: {value!r} must be a finite number")
    if not lo <= value <= hi:
        raise ConfigError(f"model_options.{name}: {value} must lie in [{lo}, {hi}]")
    return float(value)


class ALIF(nn.Module):
    """A population of ALIF neurons; ``learn_beta`` makes ``beta`` a trainable scalar
    (clamped to [0, 1] in the forward pass). ``rho`` and ``adapt`` stay fixed."""

    def __init__(
        self,
        beta: float = 0.9,
        threshold: float = 1.0,
        reset: str = "subtract",
        surrogate: str = "arctan",
        slope: float | None = None,
        learn_beta: bool = False,
        rho: float = 0.97,
        adapt: float = 1.8,
    ):
        super().__init__()
        check_name(surrogate)
        if reset not in ALIF_RESETS:
            raise ConfigError(f"reset: {reset!r}; the ALIF layers take subtract or zero")
        beta = _number("beta", beta, 0.0, 1.0)
        self.threshold = _number("threshold", threshold, 1e-6, 1e6)
        self.rho = _number("rho", rho, 0.0, 1.0)
        self.adapt = _number("adapt", adapt, 0.0, 1e3)
        self.reset = reset
        self.surrogate = surrogate
        self.slope = (
            default_slope(surrogate) if slope is None else _number("slope", slope, 1e-6, 1e6)
        )
        self.learn_beta = bool(learn_beta)
        if self.learn_beta:
            self.beta = nn.Parameter(torch.tensor(beta))
        else:
            self.register_buffer("beta", torch.tensor(beta))

    def beta_value(self) -> float:
        return float(self.beta.detach().clamp(0.0, 1.0))

    def params(self) -> ALIFParams:
        beta = self.beta.clamp(0.0, 1.0) if self.learn_beta else self.beta_value()
        return ALIFParams(
            beta, self.rho, self.threshold, self.adapt, self.reset, self.surrogate, self.slope
        )

    def init_state(self, batch: int, n: int, dtype=torch.float32, device=None) -> ALIFState:
        return alif_init((batch, n), dtype, device)

    def forward(self, cur, state: ALIFState | None = None, rec_weight=None):
        """``(spikes, membranes, state)`` for ``cur [T, B, N]`` (:func:`alif_fused`)."""
        if cur.dtype in (torch.float16, torch.bfloat16):
            cur = cur.float()  # membranes in float32 under autocast
        if rec_weight is not None:
            rec_weight = rec_weight.to(cur.dtype)
        return alif_fused(cur, self.params(), state, rec_weight)

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta_value():.3g}, rho={self.rho}, adapt={self.adapt}, "
            f"threshold={self.threshold}, reset={self.reset}, surrogate={self.surrogate}, "
            f"learn_beta={self.learn_beta}"
        )
