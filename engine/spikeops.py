"""Fast stateless layers for spike sequences: convolution + pooling over all ``T x B`` samples.

``conv_pool`` computes ``pool(conv2d(x))`` for a folded sequence ``x [T*B, C, H, W]`` exactly as
``F.max_pool2d(F.conv2d(x, w, b), k)`` (or ``avg_pool2d``, or no pooling) does, but as one
autograd node that

- runs in chunks of samples in channels-last layout (oneDNN's fast path on CPU; the chunk's
  convolution output is the only large temporary, and it is reused chunk after chunk),
- saves its input as ``uint8`` when it is spikes (``binary=True``: 1 byte instead of 4) and the
  winner of each max-pool window as a ``uint8`` code (instead of ``int64`` indices and the whole
  convolution output),
- optionally computes in bfloat16 (``dtype=torch.bfloat16``; spikes are exact in bf16, weights
  lose precision), returning float32.

Ties in a max-pool window go to the first maximum in row-major order, as ``F.max_pool2d`` does
(spike inputs make ties common), so results and gradients equal the plain layers' (tests in
tests/engine/test_spikeops.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.errors import ConfigError

POOLS = ("max", "avg", "none")
_TARGET_CHUNK_BYTES = 8 << 20  # per-chunk convolution output: fits in the caches' neighbourhood


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _ConvPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, conv_args, pool_kind, pool, binary, dtype, chunk):
        stride, padding, dilation, groups = conv_args
        n = x.shape[0]
        cl = torch.channels_last
        wc = weight.detach().to(dtype).contiguous(memory_format=cl)
        bc = None if bias is None else bias.detach().to(dtype)
        codes, saved_x = [], []
        conv_hw = None
        out = None
        for lo in range(0, n, chunk):
            xc = x[lo : lo + chunk].detach()
            xk = xc.to(dtype).contiguous(memory_format=cl)
            y = F.conv2d(xk, wc, bc, stride, padding, dilation, groups)
            conv_hw = y.shape[2:]
            if pool_kind == "max":
                p, idx = F.max_pool2d_with_indices(y, pool)
                codes.append(_encode_argmax(idx, conv_hw[1], pool))
            elif pool_kind == "avg":
                p = F.avg_pool2d(y, pool)
            else:
                p = y
            if out is None:
                out_dtype = torch.float64 if dtype == torch.float64 else torch.float32
                out = torch.empty((n, *p.shape[1:]), dtype=out_dtype, memory_format=cl)
            out[lo : lo + p.shape[0]].copy_(p)
            if ctx.needs_input_grad[1]:
                # the weight gradient needs the input: spikes fit in one byte each
                saved_x.append(xk.to(torch.uint8) if binary else xk)
        ctx.meta = (conv_args, pool_kind, pool, binary, dtype, chunk, x.shape, x.dtype, conv_hw)
        ctx.codes = codes
        ctx.saved_x = saved_x
        ctx.save_for_backward(weight, bias)
        return out

    @staticmethod
    def backward(ctx, g_out):
        weight, bias = ctx.saved_tensors
        conv_args, pool_kind, pool, binary, dtype, chunk, x_shape, x_dtype, conv_hw = ctx.meta
        stride, padding, dilation, groups = conv_args
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        cl = torch.channels_last
        wc = weight.detach().to(dtype).contiguous(memory_format=cl)
        acc = torch.float64 if weight.dtype == torch.float64 else torch.float32
        g_w = torch.zeros_like(weight, dtype=acc) if need_w else None
        g_b = torch.zeros(weight.shape[0], dtype=acc) if need_b else None
        g_x = torch.empty(x_shape, dtype=x_dtype, memory_format=cl) if need_x else None
        if need_w and not ctx.saved_x:
            raise RuntimeError("conv_pool: the input was not saved for the weight gradient")
        for i, lo in enumerate(range(0, x_shape[0], chunk)):
            gp = g_out[lo : lo + chunk].to(dtype).contiguous(memory_format=cl)
            n = gp.shape[0]
            y_shape = (n, weight.shape[0], *conv_hw)
            if pool_kind == "max":
                idx = _decode_argmax(ctx.codes[i], conv_hw[1], pool)
                proto = torch.empty(y_shape, dtype=dtype).contiguous(memory_format=cl)
                gy = torch.ops.aten.max_pool2d_with_indices_backward(
                    gp, proto, [pool, pool], [pool, pool], [0, 0], [1, 1], False, idx
                )
            elif pool_kind == "avg":
                proto = torch.empty(y_shape, dtype=dtype).contiguous(memory_format=cl)
                gy = torch.ops.aten.avg_pool2d_backward(
                    gp, proto, [pool, pool], [pool, pool], [0, 0], False, True, None
                )
            else:
                gy = gp
            if need_w:
                xs = ctx.saved_x[i]
                xk = xs.to(dtype) if binary else xs
            else:
                xk = torch.empty((n, *x_shape[1:]), dtype=dtype).contiguous(memory_format=cl)
            gi, gw, gb = torch.ops.aten.convolution_backward(
                gy.contiguous(memory_format=cl),
                xk,
                wc,
                [weight.shape[0]] if need_b else None,
                list(stride),
                list(padding),
                list(dilation),
                False,
                [0, 0],
                groups,
                [need_x, need_w, need_b],
            )
            if need_x:
                g_x[lo : lo + n].copy_(gi)
            if need_w:
                g_w.add_(gw)
            if need_b:
                g_b.add_(gb)
        ctx.saved_x = ctx.codes = None
        if g_w is not None:
            g_w = g_w.to(weight.dtype)
        if g_b is not None:
            g_b = g_b.to(bias.dtype)
        return g_x, g_w, g_b, None, None, None, None, None, None


def _window_base(hp: int, wp: int, width: int, k: int) -> torch.Tensor:
    """Flat index of each pooling window's top-left element ``[1, 1, hp, wp]`` (int64)."""
    rows = torch.arange(hp, dtype=torch.int64).view(hp, 1) * (k * width)
    cols = torch.arange(wp, dtype=torch.int64).view(1, wp) * k
    return (rows + cols).view(1, 1, hp, wp)


def _encode_argmax(idx: torch.Tensor, width: int, k: int) -> torch.Tensor:
    """Each window winner's offset from the window's corner, in the smallest integer type.

    ``F.max_pool2d``'s int64 indices cost 8 bytes per output; the offset (at most
    ``(k - 1) * (width + 1)``) fits one byte for the report's layer sizes.
    """
    largest = (k - 1) * (width + 1)
    small = torch.uint8 if largest < 256 else torch.int16 if largest < 32768 else torch.int32
    return (idx - _window_base(*idx.shape[2:], width, k)).to(small)


def _decode_argmax(code: torch.Tensor, width: int, k: int) -> torch.Tensor:
    return code.to(torch.int64).add_(_window_base(*code.shape[2:], width, k))


def conv_pool(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    pool: str = "max",
    pool_size: int = 2,
    binary: bool = False,
    dtype: torch.dtype | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """``pool(conv2d(x, weight, bias))`` over a batch ``[N, C, H, W]`` (N = T*B), fast on CPU.

    Parameters
    ----------
    pool : "max", "avg" or "none"; ``pool_size`` is the window and the stride.
    binary : the input holds only 0 and 1 (spikes); it is then saved as uint8.
    dtype : compute dtype (None: the input's; ``torch.bfloat16`` for bf16 matmuls on CPUs
        that support them). The result is float32 (float64 for float64 inputs).
    chunk : samples per chunk (None: about 8 MiB of convolution output per chunk).

    Returns
    -------
    tensor ``[N, C_out, H', W']`` in channels-last memory layout.
    """
    if pool not in POOLS:
        raise ConfigError(f"pooling: {pool!r}; choose one of {', '.join(POOLS)}")
    if isinstance(padding, str):
        raise ConfigError("conv_pool takes numeric padding (compute 'same' as kernel // 2)")
    if x.device.type != "cpu":
        # the chunking and layout tricks are for CPUs; elsewhere the plain layers are as fast
        y = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
        if pool == "max":
            return F.max_pool2d(y, pool_size)
        return F.avg_pool2d(y, pool_size) if pool == "avg" else y
    dtype = x.dtype if dtype is None else dtype
    if x.dtype in (torch.float16, torch.bfloat16) and dtype == x.dtype:
        x = x.float()
    conv_args = (_pair(stride), _pair(padding), _pair(dilation), int(groups))
    if chunk is None:
        h, w = x.shape[2:]
        per_sample = weight.shape[0] * h * w * (2 if dtype == torch.bfloat16 else 4)
        chunk = max(1, _TARGET_CHUNK_BYTES // max(per_sample, 1))
    k = int(pool_size) if pool != "none" else 1
    return _ConvPool.apply(x, weight, bias, conv_args, pool, k, bool(binary), dtype, int(chunk))


def conv_block(
    x: torch.Tensor,
    conv: torch.nn.Conv2d,
    bn: torch.nn.Module | None = None,
    pool: torch.nn.Module | None = None,
    *,
    binary: bool = False,
) -> torch.Tensor:
    """``pool(bn(conv(x)))`` for a folded sequence ``x [T*B, C, H, W]``, the fast way on CPU.

    Without batch norm (``bn`` None or ``nn.Identity``) and with a square ``MaxPool2d`` /
    ``AvgPool2d`` (kernel == stride, no padding) or no pooling, this is :func:`conv_pool`;
    otherwise the plain layers run in channels-last layout. Under CPU autocast the convolution
    runs in the autocast dtype. ``binary``: ``x`` holds only spikes (0/1).
    """
    from torch import nn

    bn = None if isinstance(bn, nn.Identity) else bn
    pool = None if isinstance(pool, nn.Identity) else pool
    kind, size = _pool_kind(pool)
    if bn is not None or kind is None or conv.padding_mode != "zeros":
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
    return conv_pool(
        x,
        conv.weight,
        conv.bias,
        stride=conv.stride,
        padding=padding,
        dilation=conv.dilation,
        groups=conv.groups,
        pool=kind,
        pool_size=size,
        binary=binary,
        dtype=dtype,
    )


def _plain(x, conv, bn, pool):
    y = conv(x.contiguous(memory_format=torch.channels_last))
    y = bn(y) if bn is not None else y
    return pool(y) if pool is not None else y


def _pool_kind(pool) -> tuple[str | None, int]:
    """("max" | "avg" | "none", window) when ``conv_pool`` can do this pooling, else (None, 0)."""
    from torch import nn

    if pool is None:
        return "none", 1
    if isinstance(pool, (nn.MaxPool2d, nn.AvgPool2d)):
        k, s = _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size)
        pad = _pair(pool.padding)
        if k[0] != k[1] or k != s or pad != (0, 0) or pool.ceil_mode:
            return None, 0
        if isinstance(pool, nn.MaxPool2d):
            if _pair(pool.dilation) != (1, 1) or pool.return_indices:
                return None, 0
            return "max", k[0]
        if not pool.count_include_pad or pool.divisor_override:
            return None, 0
        return "avg", k[0]
    return None, 0


def linear_seq(x: torch.Tensor, fc: torch.nn.Linear) -> torch.Tensor:
    """``fc(x.flatten(2))`` for ``x [T, B, C, H, W]`` without copying a channels-last ``x``.

    A channels-last ``x`` flattens in (H, W, C) order for free; the weight's columns are put in
    that order instead (a copy of the small weight, not of the ``T x B`` activations).
    """
    if x.dim() == 5 and x.permute(0, 1, 3, 4, 2).is_contiguous() and not x.is_contiguous():
        out_f = fc.weight.shape[0]
        c, h, w = x.shape[2:]
        weight = fc.weight.view(out_f, c, h, w).permute(0, 2, 3, 1).reshape(out_f, -1)
        return F.linear(x.permute(0, 1, 3, 4, 2).flatten(2), weight, fc.bias)
    return fc(x.flatten(2))
