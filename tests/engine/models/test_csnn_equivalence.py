"""The app's CSNN (its own fast forward: engine.neuro.spike_ops + the fused LIF) against the report's
network as snnTorch users write it (engine.bench.reference: snn.Leaky in a Python time loop).

Same weights, same input: the output spikes must be identical, the membranes equal up to float
rounding and the weight gradients within a small relative tolerance (issue 8's equivalence)."""

from __future__ import annotations

import pytest
import torch

from engine.bench.reference import ReferenceCSNN
from engine.bench.train_step import TrainCase, app_model, copy_reference_weights


@pytest.mark.parametrize(
    "case",
    [
        TrainCase("mfcc", "MFCC", (1, 20, 60), 3, 9, 3),
        TrainCase("mnist", "MNIST", (1, 28, 28), 3, 6, 10, (6, 8), (5, 5)),
    ],
    ids=lambda c: c.key,
)
def test_app_csnn_equals_the_snntorch_loop(case):
    torch.manual_seed(0)
    ref = ReferenceCSNN(
        case.input_shape, case.n_classes, case.channels, case.kernels, steps=case.steps
    )
    app = app_model(case)  # the report's network: no batch norm, no input scaling
    copy_reference_weights(ref, app)
    x = torch.randn(case.batch, *case.input_shape, generator=torch.Generator().manual_seed(1)) * 2
    w = torch.randn(
        case.steps, case.batch, case.n_classes, generator=torch.Generator().manual_seed(2)
    )

    spk_r, mem_r = ref(x)
    (spk_r * w).sum().add(mem_r.sum()).backward()
    out = app(x, steps=case.steps)
    (out.spikes * w).sum().add(out.mem.sum()).backward()

    assert 0.0 < float(spk_r.detach().mean()) < 1.0, "no spikes to compare"
    assert torch.equal(out.spikes, spk_r)
    assert float((out.mem - mem_r).detach().abs().max()) < 1e-4
    pairs = [(r.weight, a.weight) for r, a in zip(ref.convs, app.convs)]
    pairs += [(r.bias, a.bias) for r, a in zip(ref.convs, app.convs)]
    pairs += [(ref.fc.weight, app.fc.weight), (ref.fc.bias, app.fc.bias)]
    for p_ref, p_app in pairs:
        scale = float(p_ref.grad.abs().max())
        assert scale > 0
        assert float((p_ref.grad - p_app.grad).abs().max()) / scale < 1e-4


def test_app_csnn_default_options_train_and_infer_consistently():
    """The default CSNN (batch norm on every current) through the fast path: a training-mode
    forward updates the running statistics as nn.BatchNorm2d does, and evaluation (batch norm
    folded into the convolution) matches the same network built from plain modules."""
    from engine.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("csnn", (1, 20, 40), 4)
    x = torch.randn(5, 1, 20, 40)
    model.train()
    model(x, steps=6).mem.sum().backward()
    # plain modules: the same statistics after one pass over the same currents
    plain_bn = torch.nn.BatchNorm2d(12)
    cur = model.convs[0](model.input_norm(x))
    plain_bn.train()
    plain_bn(cur)
    assert torch.allclose(model.bns[0].running_mean, plain_bn.running_mean, atol=1e-5)
    assert torch.allclose(model.bns[0].running_var, plain_bn.running_var, atol=1e-5)

    model.eval()
    with torch.no_grad():
        fast = model(x, steps=6, record=True)
        xin = model.input_norm(x)
        cur = model.pools[0](model.bns[0](model.convs[0](xin)))
        spk, mem = model.lifs[0](cur.unsqueeze(0).expand(6, *cur.shape))
    assert float((mem - fast.record["lif1"][1]).abs().max()) < 1e-4
    assert (spk != fast.record["lif1"][0]).float().mean() < 1e-3
