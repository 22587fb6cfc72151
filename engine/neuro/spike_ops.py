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

Over 400 lines on purpose: the forward and the backward of one autograd node (and their
chunking and uint8 codes) belong together; the nn.Module wrappers live in
:mod:`engine.neuro.spike_modules`, the readout in :mod:`engine.neuro.spike_readout`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.errors import ConfigError

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
                p, code = _max_pool(y, pool)
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
            gy = _unpool(gp, code, pool_kind, pool, y_shape, dtype)
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


class _ConvBNPool(torch.autograd.Function):
    """``pool(batch_norm(conv2d(x)))`` with batch statistics (a training-mode BatchNorm2d).

    Batch norm is a per-channel monotone map, so max pooling after it picks the window's
    maximum of the convolution output where the channel's scale ``gamma`` is >= 0 and its
    minimum where it is < 0: the forward pass pools the raw output (keeping the winners' codes
    and values, a quarter of the output) while it sums the statistics, then normalises the
    pooled values. Average pooling commutes with the affine map. The backward pass needs the
    normalised output everywhere (batch norm's gradient is dense): it recomputes each chunk's
    convolution, so nothing of full size is kept.
    """

    @staticmethod
    def forward(
        ctx,
        x,
        weight,
        bias,
        gamma,
        beta,
        conv_args,
        pool_kind,
        pool,
        binary,
        dtype,
        chunk,
        bn,
        out_dtype,
    ):
        stride, padding, dilation, groups = conv_args
        eps, running_mean, running_var, counter, momentum = bn
        n = x.shape[0]
        cl = torch.channels_last
        channels = weight.shape[0]
        wc = weight.detach().to(dtype).contiguous(memory_format=cl)
        bc = None if bias is None else bias.detach().to(dtype)
        g_sign = torch.ones(channels) if gamma is None else gamma.detach().float()
        use_min = pool_kind == "max" and bool((g_sign < 0).any())
        parts = []  # per chunk: (count, mean, biased variance) per channel
        codes, saved_x, pooled = [], [], None
        conv_hw = None
        for lo in range(0, n, chunk):
            xk = x[lo : lo + chunk].detach().to(dtype).contiguous(memory_format=cl)
            y = F.conv2d(xk, wc, bc, stride, padding, dilation, groups)
            conv_hw = y.shape[2:]
            parts.append(_chunk_moments(y))
            if pool_kind == "max":
                p, code = _max_pool(y, pool, fast=not use_min)
                if use_min:
                    q, idx_min = F.max_pool2d_with_indices(-y, pool)
                    neg = (g_sign < 0).view(1, -1, 1, 1)
                    p = torch.where(neg, -q, p)
                    code = torch.where(neg, _encode_argmax(idx_min, conv_hw[1], pool), code)
                codes.append(code)
            elif pool_kind == "avg":
                p = F.avg_pool2d(y, pool)
            else:
                p = y
            if pooled is None:
                pooled = torch.empty((n, *p.shape[1:]), dtype=torch.float32, memory_format=cl)
            pooled[lo : lo + p.shape[0]].copy_(p)
            saved_x.append(spike_bytes(xk) if binary else xk)
        m = n * conv_hw[0] * conv_hw[1]
        mean, var = _combine_moments(parts, m)
        if running_mean is not None:
            with torch.no_grad():
                counter.add_(1)
                f = 1.0 / float(counter) if momentum is None else momentum
                running_mean.mul_(1 - f).add_(mean.to(running_mean.dtype), alpha=f)
                unbiased = var * (m / max(m - 1, 1))
                running_var.mul_(1 - f).add_(unbiased.to(running_var.dtype), alpha=f)
        mean32 = mean.float().view(1, -1, 1, 1)
        invstd = (var + eps).rsqrt().float().view(1, -1, 1, 1)
        xhat = (pooled - mean32).mul_(invstd)  # the pooled values, normalised
        out = xhat.clone() if gamma is None else xhat * gamma.detach().float().view(1, -1, 1, 1)
        if beta is not None:
            out.add_(beta.detach().float().view(1, -1, 1, 1))
        out = out.to(out_dtype)
        ctx.meta = (conv_args, pool_kind, pool, binary, dtype, chunk, x.shape, x.dtype, conv_hw, m)
        ctx.codes, ctx.saved_x = codes, saved_x
        ctx.save_for_backward(weight, bias, gamma, beta, xhat, mean32, invstd)
        return out

    @staticmethod
    def backward(ctx, g_out):
        weight, bias, gamma, beta, xhat_p, mean, invstd = ctx.saved_tensors
        conv_args, pool_kind, pool, binary, dtype, chunk, x_shape, x_dtype, conv_hw, m = ctx.meta
        stride, padding, dilation, groups = conv_args
        need_x, need_w, need_b, need_g, need_beta = ctx.needs_input_grad[:5]
        cl = torch.channels_last
        channels = weight.shape[0]
        g_out = g_out.float()
        # batch norm's two reductions come from the pooled arrays: the unpooled gradient is
        # zero outside the winners (max) or spread evenly over the window (avg)
        s_g = g_out.sum((0, 2, 3), dtype=torch.float64).float()
        s_gx = (g_out * xhat_p).sum((0, 2, 3), dtype=torch.float64).float()
        gam = torch.ones(channels) if gamma is None else gamma.detach().float()
        coef = (gam.view(1, -1, 1, 1) * invstd).contiguous()
        mean_g = (s_g / m).view(1, -1, 1, 1)
        mean_gx = (s_gx / m).view(1, -1, 1, 1)
        # g_y = coef * unpool(g) - coef * mean_g - coef * invstd * mean_gx * (y - mean): two
        # passes over each chunk, a * (y - mean) + c in one, plus coef * unpool(g)
        a = -(coef * invstd * mean_gx)
        c = -(coef * mean_g)
        wc = weight.detach().to(dtype).contiguous(memory_format=cl)
        bc = None if bias is None else bias.detach().to(dtype)
        centre = dtype == torch.float32  # the convolution's bias takes -mean: y comes centred
        if centre:
            flat_mean = mean.view(-1)
            bc = -flat_mean if bc is None else bc - flat_mean
        elif dtype == torch.bfloat16:
            # a bf16 bias would round the mean: fold it into the constant instead; y is
            # already rounded to bf16, so a * y + (c - a * mean) in float32 loses nothing more
            c, centre = c - a * mean, True
        acc = torch.float64 if weight.dtype == torch.float64 else torch.float32
        g_w = torch.zeros_like(weight, dtype=acc) if need_w else None
        g_b = torch.zeros(channels, dtype=acc) if need_b else None
        g_x = torch.empty(x_shape, dtype=x_dtype, memory_format=cl) if need_x else None
        for i, lo in enumerate(range(0, x_shape[0], chunk)):
            xs = ctx.saved_x[i]
            xk = xs.to(dtype) if binary else xs
            y = F.conv2d(xk, wc, bc, stride, padding, dilation, groups)
            gp = g_out[lo : lo + chunk].contiguous(memory_format=cl)
            g_y = torch.empty(y.shape, dtype=torch.float32).contiguous(memory_format=cl)
            if centre:
                torch.addcmul(c, y, a, out=g_y)
            else:
                torch.sub(y, mean, out=g_y).mul_(a).add_(c)
            del y
            _add_unpooled(g_y, gp, coef, ctx, i, pool_kind, pool)
            gi, gw, gb = torch.ops.aten.convolution_backward(
                g_y.to(dtype).contiguous(memory_format=cl),
                xk,
                wc,
                [channels] if need_b else None,
                list(stride),
                list(padding),
                list(dilation),
                False,
                [0, 0],
                groups,
                [need_x, need_w, need_b],
            )
            if need_x:
                g_x[lo : lo + gi.shape[0]].copy_(gi)
            if need_w:
                g_w.add_(gw)
            if need_b:
                g_b.add_(gb)
        ctx.saved_x = ctx.codes = None
        g_gamma = s_gx.to(gamma.dtype) if need_g else None
        g_beta = s_g.to(beta.dtype) if need_beta else None
        if g_w is not None:
            g_w = g_w.to(weight.dtype)
        if g_b is not None:
            g_b = g_b.to(bias.dtype)
        return g_x, g_w, g_b, g_gamma, g_beta, None, None, None, None, None, None, None, None


def _chunk_moments(y: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
    """One chunk's count, per-channel mean and sum of squared deviations (two passes).

    In float32 (float64 for float64 input) over a channels-last ``[N*H*W, C]`` view: about 4x
    faster than converting the chunk to float64, and as accurate as batch norm's own
    two-pass statistics, since the deviations are taken from the chunk's mean.
    """
    y = y if y.dtype in (torch.float32, torch.float64) else y.float()
    rows = y.permute(0, 2, 3, 1).reshape(-1, y.shape[1])
    mean = rows.mean(0)
    dev = rows - mean
    return rows.shape[0], mean, dev.mul_(dev).sum(0)


def _combine_moments(parts, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and biased variance over all chunks, from :func:`_chunk_moments` of each.

    Chan et al.'s pairwise formula, on the per-channel vectors only, in float64.
    """
    mean = sum(c * mu.double() for c, mu, _ in parts) / m
    m2 = sum(ss.double() + c * (mu.double() - mean).square() for c, mu, ss in parts)
    return mean, m2 / m


def _add_unpooled(g_y, gp, coef, ctx, i, pool_kind, pool) -> None:
    """``g_y += coef * unpool(gp)`` in place.

    Average pooling needs no unpooled array: ``g_y`` is viewed with each window's rows and
    columns as separate axes and the pooled gradient broadcast over them.
    """
    ch = g_y.shape[1]
    hp, wp = gp.shape[2:]
    if pool_kind == "avg":  # rows and columns past the last whole window get no gradient
        whole = g_y[:, :, : hp * pool, : wp * pool]
        windows = whole.unflatten(2, (hp, pool)).unflatten(4, (wp, pool))
        windows.addcmul_(gp[:, :, :, None, :, None], (coef / (pool * pool)).view(1, ch, 1, 1, 1, 1))
        return
    if pool_kind == "none":
        g_y.addcmul_(gp, coef)
        return
    code = ctx.codes[i] if pool_kind == "max" else None
    g_y.addcmul_(_unpool(gp, code, pool_kind, pool, g_y.shape, torch.float32), coef)


def _unpool(gp, code, pool_kind, pool, y_shape, dtype):
    """Gradient of the convolution output from the pooled gradient ``gp`` (channels-last)."""
    cl = torch.channels_last
    if pool_kind == "none":
        return gp
    if pool_kind == "max" and dtype == gp.dtype and _fast_pool(gp):
        from engine.neuro.lif import KERNEL_LOCK

        gy = torch.empty(y_shape, dtype=dtype, memory_format=cl)
        with KERNEL_LOCK:
            _pool_kernels().unpool_codes(_nhwc(gp, True), _nhwc(code), pool, _nhwc(gy, True))
        return gy
    proto = torch.empty(y_shape, dtype=dtype).contiguous(memory_format=cl)  # shape and layout
    k = [pool, pool]
    if pool_kind == "max":
        idx = _decode_argmax(code, y_shape[3], pool)
        return torch.ops.aten.max_pool2d_with_indices_backward(
            gp, proto, k, k, [0, 0], [1, 1], False, idx
        )
    return torch.ops.aten.avg_pool2d_backward(gp, proto, k, k, [0, 0], False, True, None)


def _pool_kernels():
    """:mod:`engine.neuro.pool_numba`, or None without Numba (the ATen pooling then runs)."""
    try:
        from engine.neuro import pool_numba
    except ImportError:  # pragma: no cover - numba ships with librosa
        return None
    return pool_numba


def _nhwc(t: torch.Tensor, bits: bool = False):
    """A channels-last ``[N, C, H, W]`` tensor as a NumPy ``(N, H, W, C)`` array (no copy);
    ``bits``: as unsigned integers of the same width (bfloat16 always is)."""
    v = t.permute(0, 2, 3, 1)
    if bits or t.dtype == torch.bfloat16:
        v = v.view({2: torch.uint16, 4: torch.uint32, 8: torch.uint64}[t.element_size()])
    return v.numpy()


def _fast_pool(t: torch.Tensor) -> bool:
    return (
        t.dtype in (torch.float32, torch.bfloat16)
        and t.is_contiguous(memory_format=torch.channels_last)
        and _pool_kernels() is not None
    )


def _max_pool(y: torch.Tensor, k: int, fast: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``F.max_pool2d(y, k)`` and each window winner's code (:func:`_encode_argmax`), in one
    pass of :func:`engine.neuro.pool_numba.max_pool_codes` where it applies."""
    n, ch, h, w = y.shape
    if not (fast and _fast_pool(y)):
        p, idx = F.max_pool2d_with_indices(y, k)
        return p, _encode_argmax(idx, w, k)
    from engine.neuro.lif import KERNEL_LOCK

    cl = torch.channels_last
    p = torch.empty((n, ch, h // k, w // k), dtype=y.dtype, memory_format=cl)
    code = torch.empty(p.shape, dtype=_code_dtype(w, k), memory_format=cl)
    with KERNEL_LOCK:
        _pool_kernels().max_pool_codes(_nhwc(y), k, _nhwc(p), _nhwc(code))
    return p, code


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
    return (idx - _window_base(*idx.shape[2:], width, k)).to(_code_dtype(width, k))


def _code_dtype(width: int, k: int) -> torch.dtype:
    largest = (k - 1) * (width + 1)
    return torch.uint8 if largest < 256 else torch.int16 if largest < 32768 else torch.int32


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


def conv_bn_pool(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    bn: torch.nn.BatchNorm2d,
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
    """``pool(bn(conv2d(x)))`` with ``bn``'s batch statistics (training mode), chunked.

    Updates ``bn``'s running statistics as ``nn.BatchNorm2d`` does. Equal to the plain layers
    up to float rounding (statistics are summed in float64); where rounding makes two values of
    a window equal after normalisation, the gradient may go to the other one.
    """
    if pool not in POOLS:
        raise ConfigError(f"pooling: {pool!r}; choose one of {', '.join(POOLS)}")
    dtype, out_dtype = _dtypes(x, dtype, out_dtype)
    if x.dtype == torch.float16:
        x = x.float()
    if chunk is None:
        chunk = default_chunk(weight.shape[0], *x.shape[2:])
    track = bn.training and bn.track_running_stats and bn.running_mean is not None
    stats = (
        float(bn.eps),
        bn.running_mean if track else None,
        bn.running_var if track else None,
        bn.num_batches_tracked if track else None,
        bn.momentum,
    )
    conv_args = (as_pair(stride), as_pair(padding), as_pair(dilation), int(groups))
    k = int(pool_size) if pool != "none" else 1
    return _ConvBNPool.apply(
        x,
        weight,
        bias,
        bn.weight,
        bn.bias,
        conv_args,
        pool,
        k,
        bool(binary),
        dtype,
        int(chunk),
        stats,
        out_dtype,
    )


def default_chunk(out_channels: int, height: int, width: int, itemsize: int = 4) -> int:
    """Samples per chunk of :func:`conv_pool`: about 8 MiB of convolution output each."""
    return max(1, TARGET_CHUNK_BYTES // max(out_channels * height * width * itemsize, 1))
