"""Spiking models: the report's feedforward SNN (Fig. 22-23) and CSNN (Fig. 24), time-first.

Both take either a static input ``x [B, C, H, W]`` with ``steps`` (the "direct" encoding: the
input is a constant current at every step) or an encoded sequence ``x_seq [T, B, C, H, W]``.
Stateless layers (convolution, batch norm, pooling, linear) run over all ``T * B`` samples at
once (the CSNN's through :mod:`engine.neuro.spike_ops`: chunked, channels-last, spikes saved as uint8);
every LIF population runs through :func:`engine.neuro.lif.lif_multistep`. With a static input the
layers before the first LIF see the same input at every step, so they run once and their output
is broadcast over ``T`` (equal to computing them per step; a test checks it).

Normalisation is what closes the report's gap between the CSNN and its CNN twin:

- ``input_norm`` scales each MFCC row to zero mean and unit variance (statistics of the training
  set, stored with the weights): raw MFCC rows differ in scale by two orders of magnitude.
- ``batchnorm`` normalises the currents after each convolution (over all ``T * B`` samples), so
  every layer starts with about a third of its neurons firing whatever the input scale.
- ``readout_norm`` does the same for the output layer's currents. Without it the output neurons
  of the report's CSNN start saturated (firing at every step, their membranes far above the
  threshold where the surrogate gradient vanishes) and spike-count losses stall near chance.

Each batch norm sits right after its convolution or linear layer, so it folds into the weights
for export. Measured on FSDD (official split, T = 10, membrane cross-entropy): the CSNN reaches
the CNN's test accuracy (README's results table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from engine.errors import ConfigError
from engine.neuro.lif import lif_multistep
from engine.neuro.spike_modules import conv_block
from engine.neuro.spike_readout import linear_seq


@dataclass(frozen=True)
class SpikingOutput:
    """What a spiking model returns.

    ``spikes`` and ``mem`` are the output layer's ``[T, B, n_classes]``; ``record`` maps each
    spiking layer's name to ``(spikes, mem)`` tensors ``[T, B, ...]`` when recording was asked
    for (``record=True``), else ``None``.
    """

    spikes: torch.Tensor
    mem: torch.Tensor
    record: dict | None = None


class LIF(nn.Module):
    """A population of leaky integrate-and-fire neurons (snnTorch ``Leaky`` semantics).

    ``beta`` is the per-step membrane decay; with ``learn_beta`` it is a trainable scalar,
    clamped to [0, 1] in the forward pass.
    """

    def __init__(
        self,
        beta: float = 0.9,
        threshold: float = 1.0,
        reset: str = "subtract",
        surrogate: str = "arctan",
        slope: float | None = None,
        learn_beta: bool = False,
    ):
        super().__init__()
        from engine.neuro.surrogate import check_name

        check_name(surrogate)
        if reset not in ("subtract", "zero", "none"):
            raise ConfigError(f"reset: {reset!r} is unknown; choose one of subtract, zero, none")
        for name, value in (("beta", beta), ("threshold", threshold), ("slope", slope)):
            if value is None and name == "slope":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name}: {value!r} must be a number")
            if not math.isfinite(value):
                raise ConfigError(f"{name}: {value} must be a finite number")
        if not 0.0 <= beta <= 1.0:
            raise ConfigError(f"beta: {beta} must lie in [0, 1] (membrane decay per step)")
        if threshold <= 0 or (slope is not None and slope <= 0):
            raise ConfigError("threshold and slope must be positive")
        self.threshold = float(threshold)
        self.reset = reset
        self.surrogate = surrogate
        self.slope = slope
        self.learn_beta = bool(learn_beta)
        if self.learn_beta:
            self.beta = nn.Parameter(torch.tensor(float(beta)))
        else:
            self.register_buffer("beta", torch.tensor(float(beta)))

    def beta_value(self) -> float:
        return float(self.beta.detach().clamp(0.0, 1.0))

    def forward(self, cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # under autocast the current may be bf16/fp16: lif_multistep keeps membranes in float32
        beta = self.beta.clamp(0.0, 1.0) if self.learn_beta else self.beta_value()
        return lif_multistep(
            cur, beta, self.threshold, self.reset, self.surrogate, self.slope, mem0=None
        )

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta_value():.3g}, threshold={self.threshold}, reset={self.reset}, "
            f"surrogate={self.surrogate}, learn_beta={self.learn_beta}"
        )


class InputNorm(nn.Module):
    """Fixed input scaling fitted on the training set and saved with the weights.

    ``mode``: ``"standard"`` (z-score per feature row: MFCC coefficients differ in scale by two
    orders of magnitude), ``"global"`` (one mean and std, for images), ``"minmax"`` (per row to
    [0, 1], for the rate and latency encoders, which need probabilities) or ``"none"``.
    """

    MODES = ("standard", "global", "minmax", "none")

    def __init__(self, channels: int, height: int, mode: str = "standard"):
        super().__init__()
        if mode not in self.MODES:
            raise ConfigError(
                f"model_options.input_norm: {mode!r} is unknown; choose one of "
                f"{', '.join(self.MODES)}"
            )
        self.mode = mode
        self.register_buffer("shift", torch.zeros(1, channels, height, 1))
        self.register_buffer("scale", torch.ones(1, channels, height, 1))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Set the statistics from training inputs ``[N, C, H, W]``."""
        x = x.to(self.shift.device, torch.float32)
        if self.mode == "standard":
            mean = x.mean(dim=(0, 3), keepdim=True)
            std = x.std(dim=(0, 3), keepdim=True)
            self.shift.copy_(mean)
            self.scale.copy_(std.clamp_min(1e-3 * float(std.mean()) + 1e-8))
        elif self.mode == "global":
            self.shift.fill_(float(x.mean()))
            self.scale.fill_(max(float(x.std()), 1e-8))
        elif self.mode == "minmax":
            lo = x.amin(dim=(0, 3), keepdim=True)
            hi = x.amax(dim=(0, 3), keepdim=True)
            self.shift.copy_(lo)
            self.scale.copy_((hi - lo).clamp_min(1e-8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return x
        y = (x - self.shift) / self.scale
        return y.clamp(0.0, 1.0) if self.mode == "minmax" else y


_LIF_KEYS = ("beta", "threshold", "reset", "surrogate", "slope", "learn_beta")


def int_option(name: str, value, lo: int, hi: int) -> int:
    """An integer model option in ``[lo, hi]`` (ConfigError naming it otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"model_options.{name}: {value!r} must be a whole number in [{lo}, {hi}]")
    return value


def int_list_option(name: str, value, lo: int, hi: int) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 8:
        raise ConfigError(f"model_options.{name}: {value!r} must be a list of 1 to 8 numbers")
    return tuple(int_option(name, v, lo, hi) for v in value)


def conv_stack_options(
    channels, kernels, pool, hidden, pooling: str, padding: str
) -> tuple[tuple[int, ...], tuple[int, ...], int, int]:
    """The checked options of a conv stack (the CSNN's and the CNN's): ``(channels, kernels,
    pool, hidden)``; ConfigError naming the option otherwise."""
    channels = int_list_option("channels", channels, 1, 1024)
    kernels = int_list_option("kernels", kernels, 1, 15)
    pool = int_option("pool", pool, 1, 8)
    hidden = int_option("hidden", hidden, 0, 100_000)
    if len(channels) != len(kernels) or not channels:
        raise ConfigError(
            f"model_options: channels {list(channels)} and kernels {list(kernels)} "
            "must be non-empty lists of the same length"
        )
    if pooling not in ("max", "avg"):
        raise ConfigError(f"model_options.pooling: {pooling!r}; choose max or avg")
    if padding not in ("valid", "same"):
        raise ConfigError(f"model_options.padding: {padding!r}; choose valid or same")
    return channels, kernels, pool, hidden


def check_size(n_weights: int) -> None:
    """Refuse a layer too large to allocate (a typo such as ``hidden = 1000000000``)."""
    if n_weights > 200_000_000:
        raise ConfigError(
            f"model_options: a layer of {n_weights:,} weights is too large; use smaller "
            "hidden, channels or input sizes"
        )


def _lif_kwargs(opts: dict) -> dict:
    unknown = sorted(set(opts) - set(_LIF_KEYS))
    if unknown:
        raise TypeError(f"unexpected option {unknown[0]!r}")
    return dict(opts)


def _fold(seq: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """Apply a stateless module to ``[T, B, ...]`` as one batch of ``T * B``."""
    t, b = seq.shape[:2]
    out = module(seq.reshape(t * b, *seq.shape[2:]))
    return out.reshape(t, b, *out.shape[1:])


class _Spiking(nn.Module):
    """Shared plumbing: input handling and the names of the spiking layers."""

    spiking = True
    layer_names: tuple[str, ...] = ()

    def _prepare(self, x: torch.Tensor, steps: int | None) -> tuple[torch.Tensor, bool, int]:
        if x.dim() == 4:
            if steps is None or steps < 1:
                raise ConfigError("steps: a static input [B, C, H, W] needs steps >= 1")
            return self.input_norm(x), True, int(steps)
        if x.dim() == 5:
            return x, False, x.shape[0]
        raise ConfigError(f"input: expected [B, C, H, W] or [T, B, C, H, W], got {tuple(x.shape)}")


class FCSNN(_Spiking):
    """Feedforward SNN (report Fig. 22-23): flatten -> Linear -> LIF -> Linear -> LIF.

    ``hidden`` neurons (1000 in the report); ``batchnorm`` normalises the hidden currents,
    ``readout_norm`` the output currents.
    """

    layer_names = ("lif1", "out")

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_classes: int,
        hidden: int = 1000,
        batchnorm: bool = True,
        readout_norm: bool = True,
        input_norm: str = "standard",
        **lif,
    ):
        super().__init__()
        c, h, w = input_shape
        hidden = int_option("hidden", hidden, 1, 100_000)
        check_size(c * h * w * hidden)
        self.input_norm = InputNorm(c, h, input_norm)
        self.fc1 = nn.Linear(c * h * w, hidden)
        self.bn1 = nn.BatchNorm1d(hidden) if batchnorm else nn.Identity()
        self.lif1 = LIF(**_lif_kwargs(lif))
        self.fc2 = nn.Linear(hidden, n_classes)
        self.bn_out = nn.BatchNorm1d(n_classes) if readout_norm else nn.Identity()
        self.out = LIF(**_lif_kwargs(lif))

    def op_layers(self) -> list[tuple[str, str]]:
        """(module name, name of the spiking layer feeding it or "input")."""
        return [("fc1", "input"), ("fc2", "lif1")]

    def forward(self, x: torch.Tensor, steps: int | None = None, record: bool = False):
        x, static, t = self._prepare(x, steps)
        if static:
            cur = self.bn1(self.fc1(x.flatten(1)))
            cur = cur.unsqueeze(0).expand(t, *cur.shape)
        else:
            cur = _fold(x.flatten(2), lambda v: self.bn1(self.fc1(v)))
        spk1, mem1 = self.lif1(cur)
        spk, mem = self.out(_fold(spk1, lambda v: self.bn_out(self.fc2(v))))
        rec = {"lif1": (spk1, mem1), "out": (spk, mem)} if record else None
        return SpikingOutput(spk, mem, rec)


class CSNN(_Spiking):
    """Convolutional SNN (report Fig. 24): ``[Conv -> BN -> Pool -> LIF] x n -> FC -> LIF``.

    Parameters
    ----------
    channels, kernels : per convolution block (report: 12C5, 64C3)
    padding : "valid" (the report's) or "same"
    pooling : "max" (the report's) or "avg" (expressible in NIR)
    hidden : 0 (the report: FC straight to the classes) or a hidden spiking FC layer's size
    batchnorm : batch norm on the convolution (and hidden) currents
    readout_norm : batch norm on the output layer's currents
    input_norm : see :class:`InputNorm`
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_classes: int,
        channels: tuple[int, ...] = (12, 64),
        kernels: tuple[int, ...] = (5, 3),
        padding: str = "valid",
        pooling: str = "max",
        pool: int = 2,
        hidden: int = 0,
        batchnorm: bool = True,
        readout_norm: bool = True,
        input_norm: str = "standard",
        **lif,
    ):
        super().__init__()
        channels, kernels, pool, hidden = conv_stack_options(
            channels, kernels, pool, hidden, pooling, padding
        )
        c, h, w = input_shape
        self.input_shape = tuple(int(v) for v in input_shape)
        self.pooling = pooling
        self.input_norm = InputNorm(c, h, input_norm)
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        self.pools = nn.ModuleList()
        self.lifs = nn.ModuleList()
        for ch, k in zip(channels, kernels):
            self.convs.append(nn.Conv2d(c, ch, k, padding=k // 2 if padding == "same" else 0))
            self.bns.append(nn.BatchNorm2d(ch) if batchnorm else nn.Identity())
            pool_cls = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
            self.pools.append(pool_cls(pool) if pool > 1 else nn.Identity())
            self.lifs.append(LIF(**_lif_kwargs(lif)))
            c = ch
        with torch.no_grad():
            probe = torch.zeros(1, *input_shape)
            for conv, pl in zip(self.convs, self.pools):
                if min(probe.shape[2:]) < conv.kernel_size[0]:
                    raise ConfigError(
                        f"input shape {tuple(input_shape)} is too small for the CSNN's "
                        f"{len(channels)} conv/pool blocks; use fewer blocks, smaller kernels "
                        'or padding = "same"'
                    )
                probe = pl(conv(probe))
        flat = probe.numel()
        if flat == 0:
            raise ConfigError(f"input shape {tuple(input_shape)} is too small for the CSNN")
        self.hidden = int(hidden)
        check_size(flat * max(self.hidden, n_classes))
        if self.hidden:
            self.fc_hidden = nn.Linear(flat, self.hidden)
            self.bn_hidden = nn.BatchNorm1d(self.hidden) if batchnorm else nn.Identity()
            self.lif_hidden = LIF(**_lif_kwargs(lif))
            flat = self.hidden
        self.fc = nn.Linear(flat, n_classes)
        self.bn_out = nn.BatchNorm1d(n_classes) if readout_norm else nn.Identity()
        self.out = LIF(**_lif_kwargs(lif))
        names = [f"lif{i + 1}" for i in range(len(channels))]
        self.layer_names = tuple(names + (["lif_hidden"] if self.hidden else []) + ["out"])

    def op_layers(self) -> list[tuple[str, str]]:
        rows = [("convs.0", "input")]
        rows += [(f"convs.{i}", f"lif{i}") for i in range(1, len(self.convs))]
        last = f"lif{len(self.convs)}"
        if self.hidden:
            rows.append(("fc_hidden", last))
            last = "lif_hidden"
        rows.append(("fc", last))
        return rows

    def forward(self, x: torch.Tensor, steps: int | None = None, record: bool = False):
        x, static, t = self._prepare(x, steps)
        rec: dict | None = {} if record else None
        spk = None
        for i, (conv, bn, pl, lif) in enumerate(zip(self.convs, self.bns, self.pools, self.lifs)):
            if i == 0 and static:
                # the input does not change over time: compute this block's current once
                cur = conv_block(x, conv, bn, pl)
                cur = cur.unsqueeze(0).expand(t, *cur.shape)
            else:
                src = x if i == 0 else spk
                cur = conv_block(src.flatten(0, 1), conv, bn, pl, binary=i > 0)
                cur = cur.unflatten(0, src.shape[:2])
            spk = src = None  # let the previous layer's spikes go before the next [T, ...] arrays
            spk, mem = lif(cur)
            cur = None
            if rec is not None:
                rec[f"lif{i + 1}"] = (spk, mem)
            mem = None
        if self.hidden:
            cur = linear_seq(spk, self.fc_hidden, binary=True)
            cur = _fold(cur, self.bn_hidden)
            spk = None
            spk, mem = self.lif_hidden(cur)
            if rec is not None:
                rec["lif_hidden"] = (spk, mem)
        cur = _fold(linear_seq(spk, self.fc, binary=True), self.bn_out)
        spk, mem = self.out(cur)
        if rec is not None:
            rec["out"] = (spk, mem)
        return SpikingOutput(spk, mem, rec)
