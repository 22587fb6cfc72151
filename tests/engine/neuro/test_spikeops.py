"""engine.neuro.spike_ops: the chunked channels-last conv + pool equals the plain layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ConfigError
from engine.neuro.pool_codes import encode_argmax
from engine.neuro.spike_modules import conv_block
from engine.neuro.spike_ops import conv_pool
from engine.neuro.spike_readout import linear_seq


def _plain(x, w, b, pool, k=2, padding=0):
    y = F.conv2d(x, w, b, padding=padding)
    if pool == "max":
        return F.max_pool2d(y, k)
    return F.avg_pool2d(y, k) if pool == "avg" else y


def _grads(fn, x, w, b, g):
    x, w, b = (t.clone().requires_grad_() for t in (x, w, b))
    y = fn(x, w, b)
    (y * g).sum().backward()
    return y.detach(), x.grad, w.grad, b.grad


@pytest.mark.parametrize("pool", ["max", "avg", "none"])
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv_pool_equals_plain_layers(pool, binary, dtype):
    g = torch.Generator().manual_seed(0)
    if binary:
        x = (torch.rand(37, 3, 11, 14, generator=g) < 0.3).to(dtype)
    else:
        x = torch.randn(37, 3, 11, 14, generator=g, dtype=dtype)
    w = torch.randn(5, 3, 3, 3, generator=g, dtype=dtype)
    b = torch.randn(5, generator=g, dtype=dtype)
    shape = _plain(x, w, b, pool).shape
    gy = torch.randn(shape, generator=g, dtype=dtype)
    ours = _grads(
        lambda x, w, b: conv_pool(x, w, b, pool=pool, binary=binary, chunk=8), x, w, b, gy
    )
    ref = _grads(lambda x, w, b: _plain(x, w, b, pool), x, w, b, gy)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r, **tol)
    assert ours[0].is_contiguous(memory_format=torch.channels_last)


def test_max_pool_ties_go_to_the_first_maximum():
    """Spike inputs make equal values in a window common: the gradient must go where
    F.max_pool2d sends it (the first maximum, row-major)."""
    x = torch.zeros(6, 2, 8, 8)
    x[:, :, 2:4, 2:4] = 1.0  # some windows see spikes, most see only zeros: ties
    w = torch.randn(3, 2, 3, 3, generator=torch.Generator().manual_seed(1))
    b = torch.zeros(3)
    gy = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(2))
    ours = _grads(lambda x, w, b: conv_pool(x, w, b, binary=True), x, w, b, gy)
    ref = _grads(lambda x, w, b: _plain(x, w, b, "max"), x, w, b, gy)
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r, rtol=1e-6, atol=1e-6)


def test_wide_inputs_store_window_offsets_in_a_wider_type():
    idx = F.max_pool2d_with_indices(torch.randn(1, 1, 4, 300), 2)[1]
    assert encode_argmax(idx, 300, 2).dtype == torch.int16
    x = torch.randn(2, 1, 4, 300)
    w = torch.randn(2, 1, 1, 1)
    b = torch.zeros(2)
    gy = torch.randn(2, 2, 2, 150)
    ours = _grads(lambda x, w, b: conv_pool(x, w, b), x, w, b, gy)
    ref = _grads(lambda x, w, b: _plain(x, w, b, "max"), x, w, b, gy)
    for a, r in zip(ours, ref):
        torch.testing.assert_close(a, r)


def test_bf16_compute_is_close_and_returns_float32():
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(10, 4, 9, 9, generator=g) < 0.4).float()
    w = torch.randn(6, 4, 3, 3, generator=g) * 0.2
    y = conv_pool(x, w, None, binary=True, dtype=torch.bfloat16)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, _plain(x, w, None, "max"), rtol=2e-2, atol=2e-2)


def test_conv_block_matches_modules_with_and_without_batch_norm():
    torch.manual_seed(0)
    x = (torch.rand(12, 3, 10, 10) < 0.3).float()
    conv = nn.Conv2d(3, 4, 3, padding=1)
    for bn, pool in [
        (nn.Identity(), nn.MaxPool2d(2)),
        (None, nn.AvgPool2d(2)),
        (nn.Identity(), nn.Identity()),
        (nn.BatchNorm2d(4), nn.MaxPool2d(2)),
        (None, nn.MaxPool2d(3, stride=2)),  # overlapping windows: plain layers too
    ]:
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya = conv_block(xa, conv, bn, pool, binary=True)
        layers = [conv] + [m for m in (bn, pool) if m is not None]
        yb = nn.Sequential(*layers)(xb)
        torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
        ya.square().sum().backward()
        yb.square().sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pool", [nn.MaxPool2d(2), nn.AvgPool2d(2), nn.Identity()])
@pytest.mark.parametrize("binary", [True, False])
def test_conv_batchnorm_pool_training_and_eval(pool, binary):
    """Batch norm with batch statistics (training) and folded running statistics (eval): the
    outputs, every gradient and the running statistics equal the plain layers'."""
    g = torch.Generator().manual_seed(4)
    if binary:
        x = (torch.rand(23, 3, 9, 12, generator=g) < 0.3).float()
    else:
        x = torch.randn(23, 3, 9, 12, generator=g)
    torch.manual_seed(0)
    conv_a, bn_a = nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5)
    with torch.no_grad():
        bn_a.weight.copy_(torch.tensor([1.5, -0.7, 0.3, -2.0, 1.0]))  # negative scales too
        bn_a.bias.uniform_(-0.5, 0.5, generator=g)
    conv_b = nn.Conv2d(3, 5, 3)
    conv_b.load_state_dict(conv_a.state_dict())
    bn_b = nn.BatchNorm2d(5)
    bn_b.load_state_dict(bn_a.state_dict())
    for _step in range(2):  # two steps: the running statistics are used and updated
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya = conv_block(xa, conv_a, bn_a, pool, binary=binary)
        yb = pool(bn_b(conv_b(xb)))
        torch.testing.assert_close(ya, yb, rtol=1e-4, atol=1e-4)
        w = torch.randn(ya.shape, generator=g)
        (ya * w).sum().backward()
        (yb * w).sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-4)
        # the conv bias's gradient is zero up to rounding (batch norm removes the mean)
        assert conv_a.bias.grad.abs().max() < 1e-3 and conv_b.bias.grad.abs().max() < 1e-3
        pairs = [(conv_a.weight, conv_b.weight), *zip(bn_a.parameters(), bn_b.parameters())]
        for pa, pb in pairs:
            torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-4, atol=1e-4)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            torch.testing.assert_close(getattr(bn_a, name), getattr(bn_b, name))
    bn_a.eval()
    bn_b.eval()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya = conv_block(xa, conv_a, bn_a, pool, binary=binary)
    yb = pool(bn_b(conv_b(xb)))
    torch.testing.assert_close(ya, yb, rtol=1e-4, atol=1e-4)
    ya.sum().backward()
    yb.sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(bn_a.weight.grad, bn_b.weight.grad, rtol=1e-4, atol=1e-4)


def test_linear_seq_reads_channels_last_without_reordering_results():
    torch.manual_seed(0)
    x = (torch.rand(3, 2, 4, 5, 6) < 0.5).float()
    x_cl = torch.stack([v.contiguous(memory_format=torch.channels_last) for v in x])
    fc = nn.Linear(4 * 5 * 6, 7)
    torch.testing.assert_close(linear_seq(x_cl, fc), fc(x.flatten(2)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(linear_seq(x, fc), fc(x.flatten(2)))
    # binary: the same values and gradients, the input kept as uint8
    for inp in (x, x_cl):
        a = inp.clone().requires_grad_()
        b = x.clone().requires_grad_()
        fc.zero_grad()
        ya = linear_seq(a, fc, binary=True)
        ya.square().sum().backward()
        grads_a = [p.grad.clone() for p in fc.parameters()]
        fc.zero_grad()
        yb = fc(b.flatten(2))
        yb.square().sum().backward()
        torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)
        for ga, p in zip(grads_a, fc.parameters()):
            torch.testing.assert_close(ga, p.grad, rtol=1e-5, atol=1e-5)


def test_module_hooks_still_run():
    """Forward pre-hooks (a training loop's stop check) run; a forward hook, which wants each
    module's own output (e.g. counting MACs), makes the block run module by module."""
    conv, pool = nn.Conv2d(2, 3, 3), nn.MaxPool2d(2)
    x = torch.rand(4, 2, 8, 8)
    seen = []
    pre = conv.register_forward_pre_hook(lambda m, inp: seen.append(("pre", inp[0].shape)))
    post = conv.register_forward_hook(lambda m, inp, out: seen.append(("post", out.shape)))
    y = conv_block(x, conv, None, pool)
    assert seen == [("pre", (4, 2, 8, 8)), ("post", (4, 3, 6, 6))]
    post.remove()
    seen.clear()
    torch.testing.assert_close(conv_block(x, conv, None, pool), y)
    assert seen == [("pre", (4, 2, 8, 8))]
    pre.remove()
    fc = nn.Linear(6, 2)
    fc.register_forward_hook(lambda m, inp, out: seen.append(("fc", out.shape)))
    linear_seq(torch.rand(3, 2, 6), fc)
    assert seen[-1] == ("fc", (3, 2, 2))


def test_unknown_pooling_is_a_config_error():
    with pytest.raises(ConfigError, match="pooling"):
        conv_pool(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3), pool="median")


def test_batch_statistics_over_chunks_survive_a_large_offset():
    """The per-chunk two-pass moments, combined over chunks, match batch norm's statistics where
    a one-pass E[y^2] - E[y]^2 in float32 would lose the variance (mean 1000x the spread)."""
    from engine.neuro.spike_bn_ops import conv_bn_pool

    g = torch.Generator().manual_seed(7)
    x = torch.randn(40, 2, 8, 8, generator=g)
    conv = nn.Conv2d(2, 3, 3)
    with torch.no_grad():
        conv.bias.fill_(1000.0)
    bn_a, bn_b = nn.BatchNorm2d(3), nn.BatchNorm2d(3)
    ya = conv_bn_pool(x, conv.weight, conv.bias, bn_a, pool="max", chunk=7)  # 6 uneven chunks
    yb = F.max_pool2d(bn_b(conv(x)), 2)
    # the convolution's outputs near 1000 carry float32 rounding of 6e-5 each, and chunks of 7
    # round differently from the whole batch (a CPU's conv kernel picks its own blocking): a few
    # ulps after normalising. A one-pass variance would be off by percents.
    torch.testing.assert_close(ya, yb, rtol=0, atol=2e-3)
    torch.testing.assert_close(bn_a.running_var, bn_b.running_var, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn_a.running_mean, bn_b.running_mean)


@pytest.mark.parametrize("size", [(10, 12), (9, 12)])  # whole windows, and a cut-off last row
@pytest.mark.parametrize("pool", ["avg", "max", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_conv_batchnorm_pool_gradients_in_each_precision(size, pool, dtype):
    """The backward pass (centred recomputation, window-broadcast average unpooling) against
    the plain layers in float32: equal in float32, within bf16 rounding in bf16."""
    from engine.neuro.spike_bn_ops import conv_bn_pool

    g = torch.Generator().manual_seed(11)
    x = (torch.rand(12, 3, *size, generator=g) < 0.3).float()
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 4, 3)
    bn_a, bn_b = nn.BatchNorm2d(4), nn.BatchNorm2d(4)
    with torch.no_grad():
        for bn in (bn_a, bn_b):
            bn.weight.copy_(torch.tensor([1.2, -0.8, 0.5, 2.0]))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    wa = conv.weight.detach().clone().requires_grad_()
    ya = conv_bn_pool(xa, wa, conv.bias, bn_a, pool=pool, binary=True, dtype=dtype, chunk=5)
    plain = {"avg": lambda t: F.avg_pool2d(t, 2), "max": lambda t: F.max_pool2d(t, 2)}
    yb = plain.get(pool, lambda t: t)(bn_b(conv(xb)))
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(ya, yb, rtol=tol, atol=tol)
    gout = torch.randn(ya.shape, generator=g)
    (ya * gout).sum().backward()
    (yb * gout).sum().backward()
    if pool == "max" and dtype == torch.bfloat16:
        return  # bf16 rounding moves max pools' winners among spike-made ties: not comparable
    torch.testing.assert_close(xa.grad, xb.grad, rtol=tol, atol=tol)
    torch.testing.assert_close(wa.grad, conv.weight.grad, rtol=tol, atol=tol * 10)
