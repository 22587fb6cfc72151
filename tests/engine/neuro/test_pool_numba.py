"""engine.neuro.pool_numba (through engine.neuro.pool_codes): one-pass max pooling with winner codes equals ATen's pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.neuro.pool_codes import (
    decode_argmax,
    encode_argmax,
    fast_pool,
    max_pool_with_codes,
    unpool,
)
from engine.neuro.spike_ops import conv_pool

CL = torch.channels_last


def _aten_pool(y, k):
    p, idx = F.max_pool2d_with_indices(y, k)
    return p, encode_argmax(idx, y.shape[3], k)


def _atenunpool(gp, code, k, y_shape):
    proto = torch.empty(y_shape, dtype=gp.dtype).contiguous(memory_format=CL)
    idx = decode_argmax(code, y_shape[3], k)
    return torch.ops.aten.max_pool2d_with_indices_backward(
        gp, proto, [k, k], [k, k], [0, 0], [1, 1], False, idx
    )


def _inputs(kind, shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    if kind == "ties":  # few distinct values: equal maxima in most windows
        y = torch.randint(0, 3, shape, generator=g).float()
    else:
        y = torch.randn(shape, generator=g)
    if kind == "nan":
        y.view(-1)[torch.randperm(y.numel(), generator=g)[: y.numel() // 7]] = float("nan")
    return y.to(dtype).contiguous(memory_format=CL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind", ["random", "ties", "nan"])
@pytest.mark.parametrize(
    ("shape", "k"), [((5, 7, 9, 13), 2), ((3, 4, 10, 11), 3), ((2, 3, 4, 300), 2)]
)
def test_codes_and_values_equal_aten(dtype, kind, shape, k):
    y = _inputs(kind, shape, dtype, seed=hash((kind, k)) % 1000)
    p, code = max_pool_with_codes(y, k)
    p_ref, code_ref = _aten_pool(y, k)
    assert p.dtype == dtype and code.dtype == code_ref.dtype
    assert p.is_contiguous(memory_format=CL)
    torch.testing.assert_close(p, p_ref, rtol=0, atol=0, equal_nan=True)
    if kind != "nan":  # ATen's NaN winner is its last NaN; only the values are compared there
        assert torch.equal(code, code_ref)
    else:
        nan = p_ref.isnan()
        assert torch.equal(code[~nan], code_ref[~nan])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("shape", "k"), [((5, 7, 9, 13), 2), ((3, 4, 10, 11), 3), ((2, 3, 4, 300), 2)]
)
def test_unpool_equals_aten(dtype, shape, k):
    y = _inputs("ties", shape, dtype, seed=4)
    _, code = max_pool_with_codes(y, k)
    gp = torch.randn(code.shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    gp = gp.contiguous(memory_format=CL)
    gy = unpool(gp, code, "max", k, y.shape, dtype)
    ref = _atenunpool(gp, code, k, y.shape)
    assert gy.is_contiguous(memory_format=CL)
    assert torch.equal(gy, ref)  # rows and columns past the last window are zeros too


def test_other_layouts_and_float64_take_aten():
    y = torch.randn(2, 3, 6, 6)  # not channels-last
    p, code = max_pool_with_codes(y, 2)
    p_ref, code_ref = _aten_pool(y, 2)
    assert torch.equal(p, p_ref) and torch.equal(code, code_ref)
    y64 = torch.randn(2, 3, 6, 6, dtype=torch.float64).contiguous(memory_format=CL)
    assert not fast_pool(y64)
    assert torch.equal(max_pool_with_codes(y64, 2)[0], F.max_pool2d(y64, 2))


def test_bf16_block_keeps_bf16_and_matches_autocast_layers():
    """What a CSNN block does under CPU autocast: bf16 spikes in, bf16 current out, bf16
    input gradient; the numbers are those of the plain bf16 layers."""
    g = torch.Generator().manual_seed(6)
    x = (torch.rand(12, 4, 10, 14, generator=g) < 0.3).to(torch.bfloat16)
    x = x.contiguous(memory_format=CL)
    w = torch.randn(6, 4, 3, 3, generator=g) * 0.3
    b = torch.randn(6, generator=g) * 0.1
    gy = torch.randn(12, 6, 4, 6, generator=g).to(torch.bfloat16)

    def run(fn):
        xi, wi, bi = (
            x.clone().requires_grad_(),
            w.clone().requires_grad_(),
            b.clone().requires_grad_(),
        )
        y = fn(xi, wi, bi)
        y.backward(gy.to(y.dtype))
        return y, xi.grad, wi.grad, bi.grad

    ours = run(
        lambda x, w, b: conv_pool(
            x, w, b, binary=True, dtype=torch.bfloat16, out_dtype=torch.bfloat16
        )
    )
    ref = run(lambda x, w, b: F.max_pool2d(F.conv2d(x, w.bfloat16(), b.bfloat16()), 2))
    assert ours[0].dtype == torch.bfloat16 and ours[1].dtype == torch.bfloat16
    torch.testing.assert_close(ours[0], ref[0])
    torch.testing.assert_close(ours[1], ref[1])
    for a, r in zip(ours[2:], ref[2:]):
        torch.testing.assert_close(a, r.float(), rtol=2e-2, atol=2e-2)
