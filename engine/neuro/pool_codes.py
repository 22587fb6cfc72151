"""Max-pool winners as small integer codes: pooling that records them, unpooling from them.

A window's winner is kept as its offset from the window's corner (``i * W + j`` for row ``i``
and column ``j`` of the window, in a plane ``W`` wide) in the smallest integer type that holds it
(one byte for the report's layer sizes) instead of ``F.max_pool2d``'s ``int64`` indices. On the
CPU :mod:`engine.neuro.pool_numba` pools and unpools channels-last float32/bfloat16 chunks in one
pass each; elsewhere ATen's pooling runs and the indices are encoded. Ties go to the first
maximum in row-major order, as ``F.max_pool2d`` sends them. Used by
:mod:`engine.neuro.spike_ops` and :mod:`engine.neuro.spike_bn_ops`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def unpool(gp, code, pool_kind, pool, y_shape, dtype):
    """Gradient of the convolution output from the pooled gradient ``gp`` (channels-last)."""
    cl = torch.channels_last
    if pool_kind == "none":
        return gp
    if pool_kind == "max" and dtype == gp.dtype and fast_pool(gp):
        from engine.neuro.lif_cpu import KERNEL_LOCK

        gy = torch.empty(y_shape, dtype=dtype, memory_format=cl)
        with KERNEL_LOCK:
            _pool_kernels().unpool_codes(_nhwc(gp, True), _nhwc(code), pool, _nhwc(gy, True))
        return gy
    proto = torch.empty(y_shape, dtype=dtype).contiguous(memory_format=cl)  # shape and layout
    k = [pool, pool]
    if pool_kind == "max":
        idx = decode_argmax(code, y_shape[3], pool)
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


def fast_pool(t: torch.Tensor) -> bool:
    return (
        t.dtype in (torch.float32, torch.bfloat16)
        and t.is_contiguous(memory_format=torch.channels_last)
        and _pool_kernels() is not None
    )


def max_pool_with_codes(
    y: torch.Tensor, k: int, fast: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """``F.max_pool2d(y, k)`` and each window winner's code (:func:`encode_argmax`), in one
    pass of :func:`engine.neuro.pool_numba.max_pool_codes` where it applies."""
    n, ch, h, w = y.shape
    if not (fast and fast_pool(y)):
        p, idx = F.max_pool2d_with_indices(y, k)
        return p, encode_argmax(idx, w, k)
    from engine.neuro.lif_cpu import KERNEL_LOCK

    cl = torch.channels_last
    p = torch.empty((n, ch, h // k, w // k), dtype=y.dtype, memory_format=cl)
    code = torch.empty(p.shape, dtype=code_dtype(w, k), memory_format=cl)
    with KERNEL_LOCK:
        _pool_kernels().max_pool_codes(_nhwc(y), k, _nhwc(p), _nhwc(code))
    return p, code


def _window_base(hp: int, wp: int, width: int, k: int) -> torch.Tensor:
    """Flat index of each pooling window's top-left element ``[1, 1, hp, wp]`` (int64)."""
    rows = torch.arange(hp, dtype=torch.int64).view(hp, 1) * (k * width)
    cols = torch.arange(wp, dtype=torch.int64).view(1, wp) * k
    return (rows + cols).view(1, 1, hp, wp)


def encode_argmax(idx: torch.Tensor, width: int, k: int) -> torch.Tensor:
    """Each window winner's offset from the window's corner, in the smallest integer type.

    ``F.max_pool2d``'s int64 indices cost 8 bytes per output; the offset (at most
    ``(k - 1) * (width + 1)``) fits one byte for the report's layer sizes.
    """
    return (idx - _window_base(*idx.shape[2:], width, k)).to(code_dtype(width, k))


def code_dtype(width: int, k: int) -> torch.dtype:
    largest = (k - 1) * (width + 1)
    return torch.uint8 if largest < 256 else torch.int16 if largest < 32768 else torch.int32


def decode_argmax(code: torch.Tensor, width: int, k: int) -> torch.Tensor:
    return code.to(torch.int64).add_(_window_base(*code.shape[2:], width, k))
