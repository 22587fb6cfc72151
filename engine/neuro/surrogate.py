"""Surrogate gradients (the report's section 3.4, Fig. 20).

The forward pass is always the Heaviside step ``S = 1 if x >= 0`` with ``x = U - U_thr``.
The backward pass uses the derivative of a smooth approximation ``f_k(x)`` chosen by name:

- ``sigmoid``:      f(x) = 1 / (1 + exp(-k x)),               f'(x) = k f (1 - f)
- ``arctan``:       f(x) = arctan(pi k x / 2) / pi + 1/2,      f'(x) = (k/2) / (1 + (pi k x / 2)^2)
- ``fast_sigmoid``: f(x) = 1/2 + (k x / 2) / (1 + k |x|),      f'(x) = (k/2) / (1 + k |x|)^2

``k`` is the slope. The default slopes give every surrogate a peak derivative of 1 at the
threshold, so swapping one for another does not rescale the gradients. The ``sigmoid`` and
``arctan`` backward passes equal snnTorch's ``surrogate.sigmoid(slope=k)`` and
``surrogate.atan(alpha=k)``.
"""

from __future__ import annotations

import math

import numpy as np

from engine.errors import ConfigError

SURROGATES = ("arctan", "sigmoid", "fast_sigmoid")
DEFAULT_SLOPE = {"arctan": 2.0, "sigmoid": 4.0, "fast_sigmoid": 2.0}


def check_name(name: str) -> str:
    if name not in SURROGATES:
        raise ConfigError(f"surrogate: {name!r} is unknown; choose one of {', '.join(SURROGATES)}")
    return name


def default_slope(name: str) -> float:
    return DEFAULT_SLOPE[check_name(name)]


def curves(name: str, x: np.ndarray, slope: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Smooth approximation and its derivative at ``x = U - U_thr`` (NumPy, for plots)."""
    k = default_slope(name) if slope is None else float(slope)
    x = np.asarray(x, dtype=np.float64)
    if name == "sigmoid":
        f = 0.5 * (1.0 + np.tanh(0.5 * k * x))  # overflow-free logistic
        return f, k * f * (1.0 - f)
    if name == "arctan":
        a = math.pi * k * x / 2.0
        return np.arctan(a) / math.pi + 0.5, (k / 2.0) / (1.0 + a * a)
    d = 1.0 + k * np.abs(x)
    return 0.5 + 0.5 * k * x / d, (k / 2.0) / (d * d)


def heaviside(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x) >= 0).astype(np.float64)


def surrogate_grad(name: str, x, slope: float):
    """Torch: the derivative f'(x) used in the backward pass."""
    import torch

    if name == "sigmoid":
        f = torch.sigmoid(slope * x)
        return slope * f * (1.0 - f)
    if name == "arctan":
        a = (math.pi * slope / 2.0) * x
        return (slope / 2.0) / (1.0 + a * a)
    d = 1.0 + slope * x.abs()
    return (slope / 2.0) / (d * d)


def _make_function():
    import torch

    class SpikeFunction(torch.autograd.Function):
        """Heaviside forward, surrogate derivative backward."""

        @staticmethod
        def forward(ctx, x, name: str, slope: float):
            ctx.save_for_backward(x)
            ctx.name = name
            ctx.slope = slope
            return (x >= 0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad_out):
            (x,) = ctx.saved_tensors
            return grad_out * surrogate_grad(ctx.name, x, ctx.slope), None, None

    return SpikeFunction


_FUNCTION = None


def spike(x, name: str = "arctan", slope: float | None = None):
    """Spikes ``(x >= 0)`` of a torch tensor ``x = U - U_thr`` with the named surrogate gradient."""
    global _FUNCTION  # a cached class, not state: built lazily so importing this needs no torch
    if _FUNCTION is None:
        _FUNCTION = _make_function()
    k = default_slope(name) if slope is None else float(slope)
    return _FUNCTION.apply(x, check_name(name), k)


def snntorch_spike_grad(name: str = "arctan", slope: float | None = None):
    """A callable usable as ``snn.Leaky(spike_grad=...)`` that applies our surrogate."""
    k = default_slope(name) if slope is None else float(slope)
    check_name(name)

    def fn(x):
        return spike(x, name, k)

    return fn
