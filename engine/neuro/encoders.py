"""Spike encoders (the report's section 2.1): rate, latency and delta modulation.

Each takes a NumPy array or a torch tensor of any shape and returns the same kind (torch on the
input's device), time first: ``[T, *x.shape]``, floating point, spikes 0/1 (delta gives -1 for
off-spikes when asked). Definitions follow ``snntorch.spikegen`` where it has the same encoder,
and the tests check that they agree.

- ``rate``: ``S[t] ~ Bernoulli(clip(gain * x, 0, 1))`` independently at every step.
- ``latency``: one spike per element at ``round(t_spike)``, brighter earlier. Log code:
  ``t = tau * ln(x / (x - threshold))`` (the time an RC neuron driven by ``x`` takes to reach
  ``threshold``); linear code: ``t = tau * (1 - x)``. ``normalize`` stretches the times so the
  darkest element (below ``threshold``) fires at the last step; ``clip`` removes those instead.
- ``delta``: for a time series (time on axis 0), a spike where ``x[t] - x[t-1] >= threshold``
  and, with ``off_spike``, -1 where it is ``<= -threshold``. ``x[-1]`` is 0, or ``x[0]`` with
  ``padding`` (no spike at the first step).
- ``direct`` (``encode`` only): ``x`` repeated unchanged at every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.errors import ConfigError

ENCODERS = ("direct", "rate", "latency", "delta")


def _is_torch(x) -> bool:
    mod = type(x).__module__
    return mod.startswith("torch")


def _numpy_rng(seed_or_generator):
    if isinstance(seed_or_generator, np.random.Generator):
        return seed_or_generator
    if seed_or_generator is None or isinstance(seed_or_generator, (int, np.integer)):
        return np.random.default_rng(seed_or_generator)
    raise ConfigError(
        f"seed: {type(seed_or_generator).__name__} cannot seed a NumPy encoder; "
        "give an int or a numpy.random.Generator"
    )


def _torch_generator(seed_or_generator, device):
    import torch

    if seed_or_generator is None or isinstance(seed_or_generator, torch.Generator):
        return seed_or_generator
    if isinstance(seed_or_generator, (int, np.integer)):
        return torch.Generator(device=device).manual_seed(int(seed_or_generator))
    raise ConfigError(
        f"seed: {type(seed_or_generator).__name__} cannot seed a torch encoder; "
        "give an int or a torch.Generator"
    )


def _check_steps(steps) -> int:
    if int(steps) != steps or steps < 1:
        raise ConfigError(f"steps ({steps}) must be a whole number >= 1")
    return int(steps)


def rate(x, steps: int, gain: float = 1.0, seed_or_generator=None):
    """Rate code: a Bernoulli spike with probability ``clip(gain * x, 0, 1)`` at every step.

    The mean over ``T`` steps approaches ``clip(gain * x, 0, 1)`` (standard error
    ``sqrt(p (1 - p) / T)``).
    """
    steps = _check_steps(steps)
    if _is_torch(x):
        import torch

        xf = x if x.is_floating_point() else x.float()
        p = torch.clamp(xf * gain, 0.0, 1.0)
        p = p.unsqueeze(0).repeat((steps,) + (1,) * x.dim())
        return torch.bernoulli(p, generator=_torch_generator(seed_or_generator, x.device))
    rng = _numpy_rng(seed_or_generator)
    p = np.clip(np.asarray(x, dtype=np.float64) * gain, 0.0, 1.0)
    return (rng.random((steps,) + p.shape) < p).astype(np.float32)


def latency_times(
    x,
    steps: int,
    tau: float = 5.0,
    threshold: float = 0.01,
    linear: bool = False,
    normalize: bool = True,
    epsilon: float = 1e-7,
):
    """Spike time (in steps, not rounded) of every element of ``x`` in [0, 1].

    NumPy in, NumPy out (float64); torch in, torch out.
    """
    torch_in = _is_torch(x)
    if torch_in:
        import torch as xp

        x = x if x.is_floating_point() else x.float()
        lo, hi = (float(v) for v in xp.aminmax(x)) if x.numel() else (0.0, 0.0)
    else:
        xp = np
        x = np.asarray(x, dtype=np.float64)
        lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    _check_latency(lo, hi, steps, tau, threshold)
    if linear:
        t_tau = (steps - 1) if normalize else tau
        return (
            xp.clamp(-t_tau * (x - 1.0), max=-t_tau * (threshold - 1.0))
            if torch_in
            else (np.minimum(-t_tau * (x - 1.0), -t_tau * (threshold - 1.0)))
        )
    # below threshold the RC neuron never fires: saturate to the latest time
    xc = xp.clamp(x, min=threshold + epsilon) if torch_in else np.maximum(x, threshold + epsilon)
    t = tau * xp.log(xc / (xc - threshold))
    if normalize:
        t = t * (steps - 1) / t.max()
    return t


def _check_latency(lo: float, hi: float, steps, tau, threshold) -> None:
    _check_steps(steps)
    if lo < 0 or hi > 1:
        raise ConfigError(
            f"latency: input values must lie in [0, 1] (got {lo:.3g} to {hi:.3g}); "
            "normalise the input first"
        )
    if not 0 < threshold < 1:
        raise ConfigError(f"latency: threshold ({threshold}) must lie strictly between 0 and 1")
    if tau <= 0:
        raise ConfigError(f"latency: tau ({tau}) must be positive")


def latency(
    x,
    steps: int,
    tau: float = 5.0,
    threshold: float = 0.01,
    linear: bool = False,
    normalize: bool = True,
    clip: bool = False,
    epsilon: float = 1e-7,
):
    """Latency code: one spike per element, at ``round(t)``; brighter elements spike earlier.

    ``x`` must lie in [0, 1]. Spikes later than the last step are dropped. With ``clip``,
    elements below ``threshold`` do not spike at all.
    """
    steps = _check_steps(steps)
    t = latency_times(x, steps, tau, threshold, linear, normalize, epsilon)
    if _is_torch(x):
        import torch

        t = torch.round(t)
        keep = t <= steps - 1
        if clip:
            keep &= ~(x < threshold)
        idx = torch.clamp(t, 0, steps - 1).long().unsqueeze(0)
        out = torch.zeros((steps,) + tuple(x.shape), dtype=torch.float32, device=x.device)
        return out.scatter_(0, idx, keep.unsqueeze(0).to(torch.float32))
    x = np.asarray(x, dtype=np.float64)
    t = np.round(t)
    keep = t <= steps - 1
    if clip:
        keep &= ~(x < threshold)
    idx = np.clip(t, 0, steps - 1).astype(np.int64)
    out = np.zeros((steps,) + x.shape, dtype=np.float32)
    np.put_along_axis(out, idx[None], keep[None].astype(np.float32), axis=0)
    return out


def delta(x_seq, threshold: float = 0.1, off_spike: bool = False, padding: bool = False):
    """Delta modulation of a time series (time on axis 0): spikes where it changes by
    ``threshold`` or more from one step to the next."""
    if threshold <= 0:
        raise ConfigError(f"delta: threshold ({threshold}) must be positive")
    if _is_torch(x_seq):
        import torch

        x = x_seq if x_seq.is_floating_point() else x_seq.float()
        prev = torch.cat((x[:1] if padding else torch.zeros_like(x[:1]), x[:-1]))
        d = x - prev
        out = (d >= threshold).to(x.dtype)
        if off_spike:
            out = out - (d <= -threshold).to(x.dtype)
        return out
    x = np.asarray(x_seq, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ConfigError(f"delta: input must have a time axis first, got shape {x.shape}")
    prev = np.concatenate([x[:1] if padding else np.zeros_like(x[:1]), x[:-1]])
    d = x - prev
    out = (d >= threshold).astype(np.float32)
    if off_spike:
        out -= (d <= -threshold).astype(np.float32)
    return out


def direct(x, steps: int):
    """``x`` repeated unchanged at every step (the first layer sees the analogue input)."""
    steps = _check_steps(steps)
    if _is_torch(x):
        return x.unsqueeze(0).expand((steps,) + tuple(x.shape)).float()
    x = np.asarray(x, dtype=np.float32)
    return np.broadcast_to(x, (steps,) + x.shape).copy()


def encode(name: str, x, steps: int, **params):
    """Encode ``x`` with the encoder called ``name`` ("direct", "rate", "latency", "delta").

    ``params`` go to that encoder; ``seed_or_generator`` seeds ``rate``. ``delta`` here treats a
    static ``x`` as held from step 0 on (so elements ``>= threshold`` spike once, at step 0);
    pass ``time_axis=k`` to read axis ``k`` of ``x`` as time instead (the output is then
    ``[x.shape[k], ...]`` with that axis moved to the front and ``steps`` ignored).
    """
    if name == "direct":
        return direct(x, steps)
    if name == "rate":
        return rate(x, steps, **params)
    if name == "latency":
        return latency(x, steps, **params)
    if name == "delta":
        axis = params.pop("time_axis", None)
        if axis is not None:
            seq = x.movedim(axis, 0) if _is_torch(x) else np.moveaxis(np.asarray(x), axis, 0)
            return delta(seq, **params)
        return delta(direct(x, steps), **params)
    raise ConfigError(f"encoder: {name!r} is unknown; choose one of {', '.join(ENCODERS)}")


def spike_stats(spikes) -> dict[str, float]:
    """Spike count, sparsity (fraction of zero entries) and mean rate of a spike array."""
    s = np.asarray(spikes.detach().cpu() if _is_torch(spikes) else spikes)
    nz = int(np.count_nonzero(s))
    total = int(s.size)
    return {
        "spikes": float(nz),
        "on": float(np.count_nonzero(s > 0)),
        "off": float(np.count_nonzero(s < 0)),
        "sparsity": 1.0 - nz / total if total else math.nan,
        "rate": nz / total if total else math.nan,
    }


def normalise01(x) -> np.ndarray:
    """Min-max scale to [0, 1] (a constant array becomes zeros), e.g. an MFCC before rate or
    latency coding."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


@dataclass(frozen=True)
class EncodedView:
    """A 2-D input ``[H, W]`` encoded for display.

    Attributes
    ----------
    input : the input that was encoded, ``[H, W]`` in [0, 1] (min-max scaled if it was not)
    spikes : ``[T, H, W]``; for delta, time runs along the input's columns (``T = W``) and
        ``spikes[t]`` holds the spikes of the columns up to ``t``
    summary : ``[H, W]`` in [0, 1]: the average over steps (rate), how early each element
        spikes, ``1 - t_spike / (T - 1)`` and 0 for none (latency), or the reconstruction
        ``threshold * cumsum(spikes)`` along the columns (delta)
    raster : ``[H * W, T]`` (one row per input element) or for delta ``[H, W]`` (rows = input
        rows, time along x)
    stats : ``spike_stats`` of the spike train
    time_along_columns : True for delta
    """

    input: np.ndarray
    spikes: np.ndarray
    summary: np.ndarray
    raster: np.ndarray
    stats: dict
    encoder: str
    steps: int
    time_along_columns: bool = False


def encode_view(x, name: str, steps: int, **params) -> EncodedView:
    """Encode a 2-D input (an image in [0, 1], or an MFCC ``[coefficients, frames]``, min-max
    scaled to [0, 1] first when outside it) for the Encoding tab.

    Rate and latency encode every element over ``steps``; delta reads the columns as time
    (an MFCC's frames, an image scanned left to right) and ignores ``steps``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.size == 0:
        raise ConfigError(f"encoding view: expected a non-empty 2-D input, got shape {x.shape}")
    if float(x.min()) < 0 or float(x.max()) > 1:
        x = normalise01(x)
    if name == "delta":
        image = delta(x.T, **params).T  # [H, W]: time = columns
        t = image.shape[1]
        seen = np.arange(t)[None, :] <= np.arange(t)[:, None]  # [T, W]: columns up to step t
        spikes = (image[None, :, :] * seen[:, None, :]).astype(np.float32)
        recon = float(params.get("threshold", 0.1)) * np.cumsum(image, axis=1)
        return EncodedView(x, spikes, recon, image, spike_stats(image), name, t, True)
    spikes = encode(name, x, steps, **params)
    raster = spikes.reshape(spikes.shape[0], -1).T
    if name == "latency":
        fired = spikes.any(axis=0)
        first = spikes.argmax(axis=0)
        summary = np.where(fired, 1.0 - first / max(steps - 1, 1), 0.0)
    else:
        summary = spikes.mean(axis=0)
    return EncodedView(x, spikes, summary, raster, spike_stats(spikes), name, int(steps))
