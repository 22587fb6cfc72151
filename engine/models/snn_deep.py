"""A deeper spiking CNN for spectrograms of any length (``scnn_gap``) and its ReLU twin (``cnn_gap``).

Both are built by :class:`_GapLayers` from the same layer definitions::

    [Conv(k, "same") -> BN -> Pool -> neuron] x len(channels)      (downsampling blocks)
    [Conv(k, "same") -> BN -> (+ block input) -> neuron] x residual (residual blocks)
    global average over frequency x time -> Linear -> BN (readout_norm) -> out

where ``neuron`` is a :class:`engine.models.snn.LIF` in ``scnn_gap`` and ``nn.ReLU`` in
``cnn_gap``, and ``out`` is a LIF (output spikes and membranes) or ``nn.Identity`` (logits).
The readout sees the mean over frequency x time of the last block's spikes (a firing rate per
channel and step), so its size does not depend on the input's length: a model trained on
1-s clips runs on 3-s clips. A residual block adds its input spikes to its current before the
LIF (the spiking counterpart of ``relu(bn(conv(h)) + h)``), which keeps a deep stack firing.

Spiking blocks run through :func:`engine.neuro.spike_modules.conv_block` (chunked,
channels-last conv + BN + pool over all ``T x B`` samples) and :func:`engine.neuro.lif.lif_multistep`
(the Numba path on CPU). Average pooling (the default) keeps the model expressible in NIR.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.errors import ConfigError
from engine.models.snn import LIF, InputNorm, SpikingOutput, int_list_option, int_option
from engine.neuro.spike_modules import conv_block

LIF_OPTIONS = ("beta", "threshold", "reset", "surrogate", "slope", "learn_beta")


class GlobalAvgPool(nn.Module):
    """Mean over the last two dimensions (frequency x time): ``[..., C, H, W] -> [..., C]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1))


class _GapLayers(nn.Module):
    """The layers shared by ``scnn_gap`` and ``cnn_gap`` (``neuron``/``out`` make the difference)."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_classes: int,
        neuron,
        out,
        channels=(16, 32, 64),
        kernels=(3, 3, 3),
        pooling: str = "avg",
        pool: int = 2,
        residual: int = 0,
        batchnorm: bool = True,
        readout_norm: bool = True,
        input_norm: str = "standard",
    ):
        super().__init__()
        channels = int_list_option("channels", channels, 1, 1024)
        kernels = int_list_option("kernels", kernels, 1, 15)
        pool = int_option("pool", pool, 1, 8)
        residual = int_option("residual", residual, 0, 8)
        if len(channels) != len(kernels):
            raise ConfigError(
                f"model_options: channels {list(channels)} and kernels {list(kernels)} "
                "must be lists of the same length"
            )
        if pooling not in ("max", "avg"):
            raise ConfigError(f"model_options.pooling: {pooling!r}; choose max or avg")
        if any(k % 2 == 0 for k in kernels):
            raise ConfigError(f"model_options.kernels: {list(kernels)} must be odd sizes")
        c, h, w = (int(v) for v in input_shape)
        if min(h, w) < pool ** len(channels):
            raise ConfigError(
                f"input shape {tuple(input_shape)} is too small for {len(channels)} pooling "
                f"blocks of {pool}; use fewer channels entries or a smaller pool"
            )
        self.input_shape = (c, h, w)
        self.pooling = pooling
        self.input_norm = InputNorm(c, h, input_norm)
        self.convs, self.bns, self.pools = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.neurons = nn.ModuleList()
        shortcut = []
        pool_cls = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
        specs = [(ch, k, True) for ch, k in zip(channels, kernels)]
        specs += [(channels[-1], kernels[-1], False)] * residual
        for ch, k, down in specs:
            self.convs.append(nn.Conv2d(c, ch, k, padding=k // 2))
            self.bns.append(nn.BatchNorm2d(ch) if batchnorm else nn.Identity())
            self.pools.append(pool_cls(pool) if down and pool > 1 else nn.Identity())
            self.neurons.append(neuron())
            shortcut.append(not down)
            c = ch
        self.shortcut = tuple(shortcut)
        self.gap = GlobalAvgPool()
        self.fc = nn.Linear(c, n_classes)
        self.bn_out = nn.BatchNorm1d(n_classes) if readout_norm else nn.Identity()
        self.out = out()

    def feature_shape(self, input_shape) -> tuple[int, int, int]:
        """``(C, H, W)`` of the last block's output for an input of ``input_shape``."""
        _, h, w = input_shape
        for pl in self.pools:
            if not isinstance(pl, nn.Identity):
                h, w = h // pl.kernel_size, w // pl.kernel_size
        return self.convs[-1].out_channels, h, w


class SCNN(_GapLayers):
    """``scnn_gap``: the spiking network (LIF options as for the CSNN: ``beta``, ``threshold``,
    ``reset``, ``surrogate``, ``slope``, ``learn_beta``).

    Takes a static input ``[B, C, H, W]`` with ``steps`` (direct encoding) or an encoded
    sequence ``[T, B, C, H, W]``; ``H`` and ``W`` may differ from the ``input_shape`` it was
    built for.
    """

    spiking = True

    def __init__(self, input_shape, n_classes, **opts):
        lif = {k: opts.pop(k) for k in list(opts) if k in LIF_OPTIONS}
        super().__init__(
            input_shape, n_classes, neuron=lambda: LIF(**lif), out=lambda: LIF(**lif), **opts
        )
        self.layer_names = tuple(f"lif{i + 1}" for i in range(len(self.convs))) + ("out",)

    def op_layers(self) -> list[tuple[str, str]]:
        rows = [("convs.0", "input")]
        rows += [(f"convs.{i}", f"lif{i}") for i in range(1, len(self.convs))]
        rows.append(("fc", f"lif{len(self.convs)}"))
        return rows

    def adjust_macs(self, macs: dict[str, int], input_shape) -> dict[str, int]:
        """The readout is fed by every spike of the last block (through the average): one
        accumulate per spike and class, so it counts as a layer of ``C x H x W`` inputs."""
        c, h, w = self.feature_shape(input_shape)
        macs = dict(macs)
        macs["fc"] = c * h * w * self.fc.out_features
        return macs

    def forward(self, x: torch.Tensor, steps: int | None = None, record: bool = False):
        if x.dim() == 4:
            if steps is None or steps < 1:
                raise ConfigError("steps: a static input [B, C, H, W] needs steps >= 1")
            x, static, t = self.input_norm(x), True, int(steps)
        elif x.dim() == 5:
            static, t = False, x.shape[0]
        else:
            raise ConfigError(
                f"input: expected [B, C, H, W] or [T, B, C, H, W], got {tuple(x.shape)}"
            )
        rec: dict | None = {} if record else None
        spk = None
        blocks = zip(self.convs, self.bns, self.pools, self.neurons, self.shortcut)
        for i, (conv, bn, pl, lif, short) in enumerate(blocks):
            if i == 0 and static:
                cur = conv_block(x, conv, bn, pl)  # a constant input: one step's current
                cur = cur.unsqueeze(0).expand(t, *cur.shape)
            else:
                src = x if i == 0 else spk
                cur = conv_block(src.flatten(0, 1), conv, bn, pl, binary=i > 0)
                cur = cur.unflatten(0, src.shape[:2])
                if short:
                    cur = cur + src
            spk, mem = lif(cur)
            cur = src = None
            if rec is not None:
                rec[f"lif{i + 1}"] = (spk, mem)
        cur = self.fc(self.gap(spk))  # [T, B, classes]
        cur = self.bn_out(cur.flatten(0, 1)).unflatten(0, cur.shape[:2])
        spk, mem = self.out(cur)
        if rec is not None:
            rec["out"] = (spk, mem)
        return SpikingOutput(spk, mem, rec)


class CNNGap(_GapLayers):
    """``cnn_gap``: the same layers with ReLU for LIF and logits for the output LIF."""

    spiking = False

    def __init__(self, input_shape, n_classes, **opts):
        super().__init__(input_shape, n_classes, neuron=nn.ReLU, out=nn.Identity, **opts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input_norm(x)
        blocks = zip(self.convs, self.bns, self.pools, self.neurons, self.shortcut)
        for conv, bn, pl, act, short in blocks:
            y = pl(bn(conv(h)))
            h = act(y + h if short else y)
        return self.out(self.bn_out(self.fc(self.gap(h))))
