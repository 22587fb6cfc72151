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
(autograd through every step) and :class:`ALIF` the module holding the parameters. No fused
sequence path: the recurrent matmul inside the loop is most of the work (see
docs/audio_models.md).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ConfigError
from engine.neuro.surrogate import check_name, default_slope, spike

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
        """``(spikes, membranes, state)`` for ``cur [T, B, N]`` (see :func:`alif_sequence`)."""
        if cur.dtype in (torch.float16, torch.bfloat16):
            cur = cur.float()  # membranes in float32 under autocast
        if rec_weight is not None:
            rec_weight = rec_weight.to(cur.dtype)
        return alif_sequence(cur, self.params(), state, rec_weight)

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta_value():.3g}, rho={self.rho}, adapt={self.adapt}, "
            f"threshold={self.threshold}, reset={self.reset}, surrogate={self.surrogate}, "
            f"learn_beta={self.learn_beta}"
        )
