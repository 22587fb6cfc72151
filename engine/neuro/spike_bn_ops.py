"""Convolution + training-mode batch norm + pooling over all ``T x B`` samples, as one node.

The batch-norm sibling of :func:`engine.neuro.spike_ops.conv_pool` (same chunks, layouts and
saved spikes): :func:`conv_bn_pool` normalises with the batch's statistics, summed chunk by chunk
in two-pass float32 moments, and recomputes each chunk's convolution in the backward pass, so
nothing of the convolution output's full size is kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.errors import ConfigError
from engine.neuro.pool_codes import encode_argmax, max_pool_with_codes, unpool
from engine.neuro.spike_ops import POOLS, _dtypes, as_pair, default_chunk, spike_bytes


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
                p, code = max_pool_with_codes(y, pool, fast=not use_min)
                if use_min:
                    q, idx_min = F.max_pool2d_with_indices(-y, pool)
                    neg = (g_sign < 0).view(1, -1, 1, 1)
                    p = torch.where(neg, -q, p)
                    code = torch.where(neg, encode_argmax(idx_min, conv_hw[1], pool), code)
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
    g_y.addcmul_(unpool(gp, code, pool_kind, pool, g_y.shape, torch.float32), coef)


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
