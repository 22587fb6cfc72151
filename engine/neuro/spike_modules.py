"""``nn.Module`` blocks on the fast path of :mod:`engine.neuro.spike_ops`.

:func:`conv_block` takes a model's own ``Conv2d`` / ``BatchNorm2d`` / pooling modules and runs
them as one :func:`engine.neuro.spike_ops.conv_pool` or :func:`engine.neuro.spike_bn_ops.conv_bn_pool` where it
can (square pooling, zero padding, CPU), honouring the modules' hooks; elsewhere the modules run
one by one. :func:`fold_batchnorm` is the one place an evaluation-mode batch norm is folded into
a convolution (the TorchScript twin uses it too).
"""

from __future__ import annotations

import torch

from engine.neuro.spike_bn_ops import conv_bn_pool
from engine.neuro.spike_ops import as_pair, conv_pool


def conv_block(
    x: torch.Tensor,
    conv: torch.nn.Conv2d,
    bn: torch.nn.Module | None = None,
    pool: torch.nn.Module | None = None,
    *,
    binary: bool = False,
) -> torch.Tensor:
    """``pool(bn(conv(x)))`` for a folded sequence ``x [T*B, C, H, W]``, the fast way on CPU.

    With a square ``MaxPool2d`` / ``AvgPool2d`` (kernel == stride, no padding) or no pooling,
    this is :func:`conv_pool` (batch norm in evaluation folded into the weights) or
    :func:`conv_bn_pool` (batch norm with batch statistics); otherwise the plain layers run in
    channels-last layout. Under CPU autocast the convolution runs in the autocast dtype and
    the result comes in it, as the plain layers' would. ``binary``: ``x`` holds only spikes (0/1).
    """
    from torch import nn

    modules = [m for m in (conv, bn, pool) if m is not None]
    if has_forward_hooks(modules):
        return _plain(x, conv, bn, pool)  # a hook wants each module's own output
    x = run_pre_hooks(conv, x)  # e.g. a training loop's stop check
    for m in modules[1:]:
        run_pre_hooks(m, x)  # called for their side effects; the block runs as one op
    bn = None if isinstance(bn, nn.Identity) else bn
    pool = None if isinstance(pool, nn.Identity) else pool
    kind, size = pool_kind_of(pool)
    plain_bn = bn is not None and not (
        type(bn) is nn.BatchNorm2d and x.device.type == "cpu" and x.dtype != torch.float64
    )
    if plain_bn or kind is None or conv.padding_mode != "zeros":
        return _plain(x, conv, bn, pool)
    dtype = None
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        dtype = torch.get_autocast_dtype("cpu")
    padding = conv.padding
    if isinstance(padding, str):  # "same" / "valid" as nn.Conv2d spells them
        if padding == "same" and (
            any(k % 2 == 0 for k in conv.kernel_size) or conv.dilation != (1, 1)
        ):
            return _plain(x, conv, bn, pool)  # asymmetric padding: leave it to nn.Conv2d
        padding = (0, 0) if padding == "valid" else tuple(k // 2 for k in conv.kernel_size)
    weight, bias = conv.weight, conv.bias
    opts = dict(
        stride=conv.stride,
        padding=padding,
        dilation=conv.dilation,
        groups=conv.groups,
        pool=kind,
        pool_size=size,
        binary=binary,
        dtype=dtype,
        out_dtype=dtype,  # under autocast a bf16 current, as the plain layers would give
    )
    if bn is not None and (bn.training or not bn.track_running_stats):
        return conv_bn_pool(x, weight, bias, bn, **opts)
    if bn is not None:
        weight, bias = fold_batchnorm(weight, bias, bn)
    return conv_pool(x, weight, bias, **opts)


def fold_batchnorm(weight: torch.Tensor, bias: torch.Tensor | None, bn) -> tuple:
    """A convolution's ``(weight, bias)`` with an evaluation-mode batch norm folded in.

    Batch norm with its running statistics is a per-channel affine map. The evaluation path of
    :func:`conv_block` and the TorchScript twin (:mod:`engine.export.torch_formats`) both fold it
    through this function, so they compute the same numbers bit for bit.
    """
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    bias = shift if bias is None else bias * scale + shift
    return weight * scale.view(-1, 1, 1, 1), bias


def has_forward_hooks(modules) -> bool:
    """Whether calling the modules one by one matters: forward hooks see each module's output."""
    from torch.nn.modules import module as nn_module

    if nn_module._global_forward_hooks:
        return True
    return any(m._forward_hooks for m in modules)


def run_pre_hooks(module, x):
    from torch.nn.modules import module as nn_module

    hooks = [*nn_module._global_forward_pre_hooks.values(), *module._forward_pre_hooks.values()]
    for hook in hooks:
        result = hook(module, (x,))
        if result is not None:
            x = result[0] if isinstance(result, tuple) else result
    return x


def _plain(x, conv, bn, pool):
    y = conv(x.contiguous(memory_format=torch.channels_last))
    y = bn(y) if bn is not None else y
    return pool(y) if pool is not None else y


def pool_kind_of(pool) -> tuple[str | None, int]:
    """("max" | "avg" | "none", window) when ``conv_pool`` can do this pooling, else (None, 0)."""
    from torch import nn

    if pool is None:
        return "none", 1
    if isinstance(pool, (nn.MaxPool2d, nn.AvgPool2d)):
        k, s = as_pair(pool.kernel_size), as_pair(pool.stride or pool.kernel_size)
        pad = as_pair(pool.padding)
        if k[0] != k[1] or k != s or pad != (0, 0) or pool.ceil_mode:
            return None, 0
        if isinstance(pool, nn.MaxPool2d):
            if as_pair(pool.dilation) != (1, 1) or pool.return_indices:
                return None, 0
            return "max", k[0]
        if not pool.count_include_pad or pool.divisor_override:
            return None, 0
        return "avg", k[0]
    return None, 0
