"""Non-spiking baselines: the CSNN's CNN twin and torchvision models adapted to 1-channel input.

Every model here takes a static input ``[B, C, H, W]`` and returns logits ``[B, n_classes]``.

Small inputs (an MFCC is 20 x ~100): the torchvision models downsample by 32, and VGG-16's and
DenseNet-121's pooling fails below that. ``small_input="upsample"`` (default) resizes any side
shorter than ``min_size`` (32) bilinearly before the network; ``small_input="stem"`` instead
removes the stem's downsampling (first convolution at stride 1, no stem max-pool), which keeps
more resolution at a higher cost per sample. README gives both measured on FSDD.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ConfigError
from engine.models.snn import InputNorm, check_size, conv_stack_options, int_option

TORCHVISION = ("resnet50", "resnet101", "efficientnet_b0", "vgg16", "densenet121", "mobilenet_v2")


class CNN(nn.Module):
    """The CSNN with ReLU instead of LIF: ``[Conv -> BN -> Pool -> ReLU] x n -> FC``."""

    spiking = False

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
        input_norm: str = "standard",
    ):
        super().__init__()
        channels, kernels, pool, hidden = conv_stack_options(
            channels, kernels, pool, hidden, pooling, padding
        )
        c, h, _ = input_shape
        self.input_norm = InputNorm(c, h, input_norm)
        layers: list[nn.Module] = []
        for ch, k in zip(channels, kernels):
            layers.append(nn.Conv2d(c, ch, k, padding=k // 2 if padding == "same" else 0))
            if batchnorm:
                layers.append(nn.BatchNorm2d(ch))
            if pool > 1:
                layers.append(nn.MaxPool2d(pool) if pooling == "max" else nn.AvgPool2d(pool))
            layers.append(nn.ReLU())
            c = ch
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            try:
                flat = self.features(torch.zeros(1, *input_shape)).numel()
            except RuntimeError:
                flat = 0
        if flat == 0:
            raise ConfigError(
                f"input shape {tuple(input_shape)} is too small for the CNN's "
                f'{len(channels)} conv/pool blocks; use fewer blocks or padding = "same"'
            )
        check_size(flat * max(hidden, n_classes))
        head: list[nn.Module] = [nn.Flatten()]
        if hidden:
            head += [nn.Linear(flat, hidden)]
            head += [nn.BatchNorm1d(hidden)] if batchnorm else []
            head += [nn.ReLU()]
            flat = hidden
        head.append(nn.Linear(flat, n_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.input_norm(x)))


def _parent(root: nn.Module, name: str) -> tuple[nn.Module, str]:
    parts = name.split(".")
    mod = root
    for p in parts[:-1]:
        mod = getattr(mod, p)
    return mod, parts[-1]


class TorchvisionNet(nn.Module):
    """A torchvision classifier (no pretrained weights) with a ``C``-channel first convolution."""

    spiking = False

    def __init__(
        self,
        arch: str,
        input_shape: tuple[int, int, int],
        n_classes: int,
        small_input: str = "upsample",
        min_size: int = 32,
        input_norm: str = "standard",
    ):
        super().__init__()
        try:
            from torchvision.models import get_model
        except ImportError as exc:
            raise ConfigError(
                f"model: {arch} needs torchvision; install it with pip install "
                "'snn-explorer[vision]'"
            ) from exc
        if small_input not in ("upsample", "stem"):
            raise ConfigError(
                f"model_options.small_input: {small_input!r}; choose upsample or stem"
            )
        c, h, _ = input_shape
        min_size = int_option("min_size", min_size, 0, 512)
        self.arch = arch
        self.input_norm = InputNorm(c, h, input_norm)
        net = get_model(arch, weights=None, num_classes=n_classes)
        first = next(n for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
        parent, attr = _parent(net, first)
        old = getattr(parent, attr)
        stride = 1 if small_input == "stem" else old.stride
        new = nn.Conv2d(
            c,
            old.out_channels,
            old.kernel_size,
            stride=stride,
            padding=old.padding,
            bias=old.bias is not None,
        )
        setattr(parent, attr, new)
        if small_input == "stem":
            for name in ("maxpool", "features.pool0"):  # resnet, densenet stem pools
                try:
                    parent, attr = _parent(net, name)
                    if isinstance(getattr(parent, attr, None), nn.MaxPool2d):
                        setattr(parent, attr, nn.Identity())
                except AttributeError:
                    pass
        self.net = net
        self.min_size = int(min_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(x)
        h, w = x.shape[-2:]
        if self.min_size and min(h, w) < self.min_size:
            size = (max(h, self.min_size), max(w, self.min_size))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.net(x)
