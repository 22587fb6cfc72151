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
  lose precision), returning float32 or, under autocast, bfloat16 (``out_dtype``).

Ties in a max-pool window go to the first maximum in row-major order, as ``F.max_pool2d`` does
(spike inputs make ties common), so results and gradients equal the plain layers' (tests in
tests/engine/neuro/test_spikeops.py). The winners' codes are :mod:`engine.neuro.pool_codes`'; the
batch-norm block is :mod:`engine.neuro.spike_bn_ops`, the nn.Module wrappers
:mod:`engine.neuro.spike_modules`, the readout :mod:`engine.neuro.spike_readout`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.errors import ConfigError
from engine.neuro.pool_codes import max_pool_with_codes, unpool

POOLS = ("max", "avg", "none")
TARGET_CHUNK_BYTES = 8 << 20  # per-chunk convolution output: fits in the caches' neighbourhood


def spike_bytes(x: torch.Tensor) -> torch.Tensor:
    """A 0/1 tensor as uint8 (one byte per spike, same layout), for a backward pass to keep.

    Through ``bool``: a float-to-bool cast is a comparison, many times faster on CPU than the
    saturating float-to-uint8 cast, and a bool tensor is a uint8 tensor of 0s and 1s.
    """
    return x.bool().view(torch.uint8)


def as_pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _ConvPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, conv_args, pool_kind, pool, binary, dtype, chunk, out_dtype):
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
                p, code = max_pool_with_codes(y, pool)
                codes.append(code)
            elif pool_kind == "avg":
                p = F.avg_pool2d(y, pool)
            else:
                p = y
            if out is None:
                out = torch.empty((n, *p.shape[1:]), dtype=out_dtype, memory_format=cl)
            out[lo : lo + p.shape[0]].copy_(p)
            if ctx.needs_input_grad[1]:
                # the weight gradient needs the input: spikes fit in one byte each
                saved_x.append(spike_bytes(xk) if binary else xk)
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
            code = ctx.codes[i] if pool_kind == "max" else None
            gy = unpool(gp, code, pool_kind, pool, y_shape, dtype)
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
        return g_x, g_w, g_b, None, None, None, None, None, None, None


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
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``pool(conv2d(x, weight, bias))`` over a batch ``[N, C, H, W]`` (N = T*B), fast on CPU.

    Parameters
    ----------
    pool : "max", "avg" or "none"; ``pool_size`` is the window and the stride.
    binary : the input holds only 0 and 1 (spikes); it is then saved as uint8.
    dtype : compute dtype (None: the input's; ``torch.bfloat16`` for bf16 matmuls on CPUs
        that support them).
    chunk : samples per chunk (None: about 8 MiB of convolution output per chunk).
    out_dtype : the result's dtype (None: float32, float64 for float64 inputs; autocast's
        blocks ask for bfloat16, which halves what the next layer reads and keeps).

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
    dtype, out_dtype = _dtypes(x, dtype, out_dtype)
    if x.dtype == torch.float16:
        x = x.float()
    conv_args = (as_pair(stride), as_pair(padding), as_pair(dilation), int(groups))
    if chunk is None:
        h, w = x.shape[2:]
        chunk = default_chunk(weight.shape[0], h, w, 2 if dtype == torch.bfloat16 else 4)
    k = int(pool_size) if pool != "none" else 1
    args = (conv_args, pool, k, bool(binary), dtype, int(chunk), out_dtype)
    return _ConvPool.apply(x, weight, bias, *args)


def _dtypes(x: torch.Tensor, dtype, out_dtype) -> tuple[torch.dtype, torch.dtype]:
    """The compute and result dtypes of a block (see :func:`conv_pool`)."""
    dtype = (torch.float32 if x.dtype == torch.float16 else x.dtype) if dtype is None else dtype
    if out_dtype is None:
        out_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    return dtype, out_dtype


def default_chunk(out_channels: int, height: int, width: int, itemsize: int = 4) -> int:
    """Samples per chunk of :func:`conv_pool`: about 8 MiB of convolution output each."""
    return max(1, TARGET_CHUNK_BYTES // max(out_channels * height * width * itemsize, 1))
