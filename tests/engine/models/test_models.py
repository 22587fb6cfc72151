"""Models: registry, the report's CSNN against snnTorch, direct-current shortcut, baselines."""

from __future__ import annotations

import pytest
import torch

from engine.errors import ConfigError
from engine.models.ann import TORCHVISION
from engine.models.registry import (
    MODELS,
    SpikingOutput,
    build_model,
    class_scores,
    count_params,
    first_spike_times,
    is_spiking,
    layer_macs,
    loss_value,
    ops_per_inference,
    run_model,
)

MFCC = (1, 20, 63)


def _seeded(name, shape=MFCC, n=10, seed=0, **opts):
    torch.manual_seed(seed)
    return build_model(name, shape, n, **opts)


def test_registry_names_and_spiking_flags():
    assert set(MODELS) >= {"fc_snn", "csnn", "cnn", *TORCHVISION}
    assert is_spiking("csnn") and is_spiking("fc_snn") and not is_spiking("cnn")
    assert is_spiking(_seeded("csnn")) and not is_spiking(_seeded("cnn"))
    with pytest.raises(ConfigError, match="model: 'lenet' is unknown"):
        build_model("lenet", MFCC, 10)
    with pytest.raises(ConfigError, match="model_options for csnn"):
        build_model("csnn", MFCC, 10, chanels=[4, 8])


@pytest.mark.parametrize("name", ["fc_snn", "csnn", "csnn_avg"])
def test_spiking_output_shapes_and_binary_spikes(name):
    m = _seeded(name)
    out = run_model(m, torch.randn(3, *MFCC), steps=6, record=True)
    assert isinstance(out, SpikingOutput)
    assert out.spikes.shape == (6, 3, 10) and out.mem.shape == (6, 3, 10)
    assert set(out.record) == set(m.layer_names)
    for spk, mem in out.record.values():
        assert spk.shape == mem.shape and spk.shape[:2] == (6, 3)
        assert set(spk.unique().tolist()) <= {0.0, 1.0}


def test_linear_size_follows_the_input_shape():
    # the report hard-coded 38208 inputs to the last layer; here it follows the input
    for shape in [(1, 20, 63), (1, 20, 101), (1, 28, 28), (1, 40, 216)]:
        m = _seeded("csnn", shape)
        h = ((shape[1] - 4) // 2 - 2) // 2
        w = ((shape[2] - 4) // 2 - 2) // 2
        assert m.fc.in_features == 64 * h * w
    with pytest.raises(ConfigError, match="too small"):
        build_model("csnn", (1, 8, 8), 10)
    assert _seeded("csnn", (1, 8, 8), padding="same").fc.in_features == 64 * 2 * 2


def test_csnn_equals_the_report_snntorch_network():
    """Without batch norm, the CSNN is the report's Fig. 24 written with snnTorch's Leaky."""
    snn = pytest.importorskip("snntorch")
    from snntorch import surrogate

    m = _seeded(
        "csnn", (1, 28, 28), batchnorm=False, readout_norm=False, input_norm="none", beta=0.8
    )
    # scale up so that every layer spikes
    with torch.no_grad():
        for conv in m.convs:
            conv.weight.mul_(3.0)
        m.fc.weight.mul_(3.0)
    x = torch.rand(4, 1, 28, 28)
    steps = 8
    grad = surrogate.atan(alpha=2.0)
    lifs = [snn.Leaky(beta=0.8, spike_grad=grad) for _ in range(3)]
    mems = [lif.init_leaky() for lif in lifs]
    spk_rec, mem_rec = [], []
    for _ in range(steps):
        cur = torch.nn.functional.max_pool2d(m.convs[0](x), 2)
        s1, mems[0] = lifs[0](cur, mems[0])
        cur = torch.nn.functional.max_pool2d(m.convs[1](s1), 2)
        s2, mems[1] = lifs[1](cur, mems[1])
        s3, mems[2] = lifs[2](m.fc(s2.flatten(1)), mems[2])
        spk_rec.append(s3)
        mem_rec.append(mems[2])
    ref_spk, ref_mem = torch.stack(spk_rec), torch.stack(mem_rec)
    out = m(x, steps=steps)
    assert ref_spk.sum() > 0
    assert torch.equal(out.spikes, ref_spk)
    torch.testing.assert_close(out.mem, ref_mem, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["fc_snn", "csnn"])
@pytest.mark.parametrize("training", [False, True])
def test_direct_current_computed_once_equals_per_step(name, training):
    m = _seeded(name, learn_beta=True)
    m.train(training)
    x = torch.randn(5, *MFCC) * 3 + 1
    m.input_norm.fit(x)
    steps = 7
    xs = m.input_norm(x).unsqueeze(0).expand(steps, *x.shape).contiguous()
    m_seq = _seeded(name, learn_beta=True)
    m_seq.load_state_dict(m.state_dict())
    m_seq.train(training)
    fast = m(x, steps=steps, record=True)
    slow = m_seq(xs, record=True)
    assert fast.spikes.sum() > 0
    assert torch.equal(fast.spikes, slow.spikes)
    torch.testing.assert_close(fast.mem, slow.mem, rtol=1e-5, atol=1e-5)
    for k in fast.record:
        assert torch.equal(fast.record[k][0], slow.record[k][0])
    # the gradients agree too
    y = torch.arange(5) % 10
    loss_value(fast, y).backward()
    loss_value(slow, y).backward()
    for (n, p), q in zip(m.named_parameters(), m_seq.parameters()):
        if training and n in ("fc1.bias", "convs.0.bias", "convs.1.bias", "fc.bias"):
            # a bias right before batch norm has a true gradient of 0: only rounding noise
            assert float(p.grad.abs().max()) < 1e-4 and float(q.grad.abs().max()) < 1e-4
            continue
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=n)


def test_learn_beta_gets_a_gradient_and_stays_in_range():
    m = _seeded("csnn", learn_beta=True)
    out = run_model(m, torch.randn(4, *MFCC), steps=5)
    loss_value(out, torch.tensor([0, 1, 2, 3])).backward()
    assert m.lifs[0].beta.grad is not None and m.lifs[0].beta.grad.abs() > 0
    with torch.no_grad():
        m.lifs[0].beta.fill_(1.7)
    assert m.lifs[0].beta_value() == 1.0


@pytest.mark.parametrize("encoder", ["rate", "latency", "delta"])
def test_spike_encoders_feed_the_scaled_input(encoder):
    m = _seeded("csnn")
    x = torch.randn(4, *MFCC) * 5
    m.input_norm.mode = "minmax"
    m.input_norm.fit(x)
    g = torch.Generator().manual_seed(1)
    out = run_model(m, x, steps=6, encoder=encoder, generator=g, record=True)
    inp = out.record["input"][0]
    assert inp.shape == (6, 4, *MFCC)
    assert set(inp.unique().tolist()) <= {0.0, 1.0} and inp.sum() > 0
    if encoder == "rate":  # repeatable with the same generator
        again = run_model(m, x, 6, "rate", generator=torch.Generator().manual_seed(1))
        assert torch.equal(out.spikes, again.spikes)


def test_layer_macs_by_hand_and_ops():
    m = _seeded("csnn")
    macs = layer_macs(m, MFCC)
    assert macs["convs.0"] == 12 * 16 * 59 * 25
    assert macs["convs.1"] == 64 * 6 * 27 * 12 * 9
    assert macs["fc"] == 10 * 64 * 3 * 13
    ops = ops_per_inference(m, macs, {"lif1": 0.1, "lif2": 0.2}, steps=10, encoder="direct")
    assert ops["macs"] == macs["convs.0"]
    assert ops["synops"] == pytest.approx(macs["convs.1"] * 0.1 * 10 + macs["fc"] * 0.2 * 10)
    rate = ops_per_inference(m, macs, {"input": 0.5, "lif1": 0, "lif2": 0}, 10, "rate")
    assert rate == {"synops": pytest.approx(macs["convs.0"] * 0.5 * 10), "macs": 0.0}
    cnn = _seeded("cnn")
    assert ops_per_inference(cnn, layer_macs(cnn, MFCC))["macs"] == sum(macs.values())
    # the CNN is the CSNN's twin (the CSNN adds only its readout batch norm)
    assert count_params(cnn) == count_params(_seeded("csnn", readout_norm=False))


def test_scores_counts_ties_and_first_spike():
    spikes = torch.zeros(4, 1, 3)
    spikes[:, 0, 1] = torch.tensor([0, 1, 1, 0.0])  # 2 spikes, first at t=1
    spikes[:, 0, 2] = torch.tensor([0, 0, 1, 1.0])  # 2 spikes, first at t=2
    spikes[:, 0, 0] = torch.tensor([0, 0, 0, 1.0])  # 1 spike, first at t=3
    mem = torch.zeros(4, 1, 3)
    mem[:, 0, 2] = 0.5  # breaks the count tie in favour of class 2
    out = SpikingOutput(spikes, mem)
    logits, decision = class_scores(out, "ce_count", "count")
    assert logits.tolist() == [[1.0, 2.0, 2.0]]
    assert int(decision.argmax(1)) == 2
    _, first = class_scores(out, "ce_count", "first_spike")
    assert int(first.argmax(1)) == 1
    assert first_spike_times(spikes).tolist() == [[3, 1, 2]]
    assert first_spike_times(torch.zeros(5, 1, 2)).tolist() == [[5, 5]]


def test_losses_have_their_minimum_where_expected():
    t, y = 10, torch.tensor([1])
    good = torch.zeros(t, 1, 3)
    good[:8, 0, 1] = 1
    good[:2, 0, 0] = 1
    good[:2, 0, 2] = 1
    assert float(loss_value(SpikingOutput(good, good), y, "mse_count")) == pytest.approx(0.0)
    bad = good[:, :, [1, 0, 2]]
    assert loss_value(SpikingOutput(bad, bad), y, "mse_count") > 0.1
    mem = torch.zeros(t, 1, 3)
    mem[:, 0, 1] = 5
    assert loss_value(SpikingOutput(good, mem), y, "ce_mem") < 0.02
    assert loss_value(SpikingOutput(good, good), y, "ce_count") < loss_value(
        SpikingOutput(bad, bad), y, "ce_count"
    )


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_models_train_a_step_on_a_small_mfcc(name):
    pytest.importorskip("torchvision")
    m = _seeded(name, (1, 20, 63), n=5)
    x = torch.randn(2, 1, 20, 63)
    out = run_model(m, x)
    assert out.shape == (2, 5)
    out.sum().backward()
    first = next(p for p in m.parameters() if p.dim() == 4)
    assert first.shape[1] == 1 and first.grad is not None and first.grad.abs().sum() > 0


def test_torchvision_stem_option_keeps_resolution():
    pytest.importorskip("torchvision")
    m = _seeded("resnet50", (1, 20, 63), n=5, small_input="stem")
    assert m.net.conv1.stride == (1, 1) and isinstance(m.net.maxpool, torch.nn.Identity)
    assert run_model(m, torch.randn(2, 1, 20, 63)).shape == (2, 5)
