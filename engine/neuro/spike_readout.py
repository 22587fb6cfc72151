"""The readout of a spike sequence: ``fc(x.flatten(2))`` for ``x [T, B, ...]`` without copies.

Split from :mod:`engine.neuro.spike_ops` (the convolution blocks); the CSNN's hidden and output layers
use :func:`linear_seq`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.neuro.spike_modules import has_forward_hooks, run_pre_hooks
from engine.neuro.spike_ops import spike_bytes


class _SpikeLinear(torch.autograd.Function):
    """``F.linear`` of a 0/1 input that keeps the input as uint8 for the weight gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        y = F.linear(x, weight, bias)
        ctx.save_for_backward(spike_bytes(x) if ctx.needs_input_grad[1] else None, weight)
        ctx.x_meta = (x.shape, x.dtype)
        return y

    @staticmethod
    def backward(ctx, g):
        xb, weight = ctx.saved_tensors
        shape, dtype = ctx.x_meta
        g2 = g.reshape(-1, g.shape[-1]).to(weight.dtype)
        g_x = g_w = g_b = None
        rows = max(1, (4 << 20) // max(1, shape[-1]))  # ~16 MiB of float input per chunk
        if ctx.needs_input_grad[0] and dtype == weight.dtype:
            g_x = (g2 @ weight).view(shape)
        elif ctx.needs_input_grad[0]:  # a bf16 input (autocast): no float32 copy of its size
            g_x = torch.empty(shape, dtype=dtype)
            flat = g_x.view(-1, shape[-1])
            for lo in range(0, flat.shape[0], rows):
                flat[lo : lo + rows].copy_(g2[lo : lo + rows] @ weight)
        if ctx.needs_input_grad[1]:
            x2 = xb.view(-1, shape[-1])
            g_w = torch.zeros_like(weight)
            for lo in range(0, x2.shape[0], rows):
                g_w.addmm_(g2[lo : lo + rows].t(), x2[lo : lo + rows].to(weight.dtype))
        if ctx.needs_input_grad[2]:
            g_b = g2.sum(0)
        return g_x, g_w, g_b


def linear_seq(x: torch.Tensor, fc: torch.nn.Linear, *, binary: bool = False) -> torch.Tensor:
    """``fc(x.flatten(2))`` for ``x [T, B, C, H, W]`` (or ``[T, B, N]``), without copying ``x``.

    A channels-last ``x`` flattens in (H, W, C) order for free; the weight's columns are put in
    that order instead (a copy of the small weight, not of the ``T x B`` activations).
    ``binary``: ``x`` holds only spikes; it is kept for the backward pass as uint8.
    """
    if has_forward_hooks([fc]):
        return fc(x.flatten(2))  # a hook wants the module's own call
    x = run_pre_hooks(fc, x)
    weight = fc.weight
    if x.dim() == 5 and x.permute(0, 1, 3, 4, 2).is_contiguous() and not x.is_contiguous():
        out_f = weight.shape[0]
        c, h, w = x.shape[2:]
        weight = weight.view(out_f, c, h, w).permute(0, 2, 3, 1).reshape(out_f, -1)
        flat = x.permute(0, 1, 3, 4, 2).flatten(2)
    else:
        flat = x.flatten(2)
    if binary and torch.is_grad_enabled() and flat.is_contiguous() and flat.device.type == "cpu":
        return _SpikeLinear.apply(flat, weight, fc.bias)
    return F.linear(flat, weight, fc.bias)
