"""scnn_gap (deep spiking CNN, global average readout) and its twin cnn_gap."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.errors import ConfigError
from engine.models.registry import (
    TWINS,
    SpikingOutput,
    build_model,
    layer_macs,
    ops_per_inference,
    run_model,
)
from engine.models.snn import LIF

SHAPE = (1, 16, 40)
SMALL = {"channels": [4, 8], "kernels": [3, 3]}


def _seeded(name, shape=SHAPE, seed=0, **opts):
    torch.manual_seed(seed)
    return build_model(name, shape, 5, **{**SMALL, **opts})


def _layer_list(model, spiking_to_twin=False):
    rows = []
    for name, mod in model.named_modules():
        if not name:
            continue  # the model itself
        kind = type(mod).__name__
        if spiking_to_twin and isinstance(mod, LIF):
            kind = "Identity" if name == "out" else "ReLU"
        rows.append((name, kind))
    return rows


@pytest.mark.parametrize("residual", [0, 2])
def test_twin_has_the_same_layers_with_relu_for_lif(residual):
    snn, ann = _seeded("scnn_gap", residual=residual), _seeded("cnn_gap", residual=residual)
    assert TWINS["scnn_gap"] == "cnn_gap"
    assert _layer_list(ann) == _layer_list(snn, spiking_to_twin=True)
    assert sum(isinstance(m, LIF) for m in snn.modules()) == 2 + residual + 1
    # the same weights, tensor for tensor (the LIFs' beta buffers aside)
    weights = {k: v.shape for k, v in snn.state_dict().items() if not k.endswith(".beta")}
    assert weights == {k: v.shape for k, v in ann.state_dict().items()}
    ann.load_state_dict(snn.state_dict(), strict=False)  # loads: same names and shapes


def test_any_length_runs_and_the_readout_does_not_grow_with_it():
    m = _seeded("scnn_gap").eval()
    for width in (40, 17, 123):
        out = run_model(m, torch.randn(2, 1, 16, width), steps=5)
        assert isinstance(out, SpikingOutput) and out.spikes.shape == (5, 2, 5)
    assert m.fc.in_features == 8  # channels of the last block, whatever the input size
    ann = _seeded("cnn_gap").eval()
    assert ann(torch.randn(2, 1, 16, 123)).shape == (2, 5)


def test_records_every_layer_with_binary_spikes_and_encoded_input_matches_direct():
    m = _seeded("scnn_gap", residual=1).eval()
    x = torch.randn(3, *SHAPE)
    out = m(x, steps=6, record=True)
    assert set(out.record) == set(m.layer_names) == {"lif1", "lif2", "lif3", "out"}
    for spk, mem in out.record.values():
        assert spk.shape == mem.shape and spk.shape[:2] == (6, 3)
        assert set(spk.unique().tolist()) <= {0.0, 1.0}
    assert out.record["lif1"][0].sum() > 0 and out.record["lif3"][0].sum() > 0
    # the static shortcut (first block computed once) equals feeding the sequence
    seq = m.input_norm(x).unsqueeze(0).expand(6, *x.shape).contiguous()
    again = m(seq)
    assert torch.equal(again.spikes, out.spikes)
    torch.testing.assert_close(again.mem, out.mem, rtol=0, atol=1e-5)


def test_fast_conv_path_equals_the_module_by_module_path():
    m = _seeded("scnn_gap", residual=1).eval()
    x = torch.randn(4, *SHAPE)
    fast = m(x, steps=5, record=True)
    hooks = [c.register_forward_hook(lambda *a: None) for c in m.convs]  # forces the plain path
    try:
        plain = m(x, steps=5, record=True)
    finally:
        for h in hooks:
            h.remove()
    for name in m.layer_names:
        torch.testing.assert_close(fast.record[name][1], plain.record[name][1], atol=1e-4, rtol=0)


def test_training_step_reaches_every_layer():
    m = _seeded("scnn_gap", residual=1, learn_beta=True)
    out = m(torch.randn(4, *SHAPE), steps=4)
    torch.nn.functional.cross_entropy(out.mem.mean(0), torch.tensor([0, 1, 2, 3])).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_synops_count_every_spike_of_the_last_block_into_the_readout():
    m = _seeded("scnn_gap")
    macs = layer_macs(m, SHAPE)
    # 16x40 -> 8x20 -> 4x10 with avg pooling of 2; readout: 8 channels x 4 x 10 x 5 classes
    assert macs["fc"] == 8 * 4 * 10 * 5
    assert macs["convs.1"] == 8 * 4 * 9 * 8 * 20  # out ch x in ch x k x k x (pooled) positions
    ops = ops_per_inference(m, macs, {"lif1": 0.1, "lif2": 0.2}, steps=10)
    assert ops["macs"] == macs["convs.0"]
    assert ops["synops"] == pytest.approx(macs["convs.1"] * 0.1 * 10 + macs["fc"] * 0.2 * 10)
    assert layer_macs(_seeded("cnn_gap"), SHAPE)["fc"] == 8 * 5  # the twin averages first


@pytest.mark.parametrize(
    "opts, text",
    [
        ({"kernels": [4, 3]}, "kernels"),
        ({"channels": [4]}, "channels"),
        ({"pooling": "min"}, "pooling"),
        ({"residual": -1}, "residual"),
        ({"chanels": [4]}, "model_options for scnn_gap"),
    ],
)
def test_bad_options_give_one_line(opts, text):
    with pytest.raises(ConfigError, match=text):
        build_model("scnn_gap", SHAPE, 5, **{**SMALL, **opts})
    with pytest.raises(ConfigError, match="too small"):
        build_model("scnn_gap", (1, 3, 40), 5, **SMALL)


def test_nir_graph_reproduces_the_spikes_with_a_residual_block():
    from engine.export.nir import model_to_nir
    from engine.export.nir_run import simulate_nir

    m = _seeded("scnn_gap", residual=1, reset="zero", beta=0.8)
    x = torch.randn(6, *SHAPE)
    for _ in range(3):
        m(x, steps=4)  # batch-norm running statistics
    m.eval()
    with torch.no_grad():
        out = m(x, steps=10, record=True)
    graph = model_to_nir(m, SHAPE)
    assert ("lifs.1", "lifs.2") in graph.edges and ("convs.2", "lifs.2") in graph.edges
    assert type(graph.nodes["gap"]).__name__ == "AvgPool2d"
    scaled = m.input_norm(x)
    run = simulate_nir(graph, scaled.unsqueeze(0).expand(10, *scaled.shape))
    for key, node in {"lif1": "lifs.0", "lif3": "lifs.2", "out": "out"}.items():
        assert torch.equal(run.spikes[node], out.record[key][0]), key
    assert out.record["lif3"][0].sum() > 0
    np.testing.assert_array_equal(run.output.sum(0).numpy(), out.spikes.sum(0).numpy())


def test_nir_refuses_max_pooling_with_one_line():
    from engine.errors import ExportError
    from engine.export.nir import model_to_nir

    m = _seeded("scnn_gap", reset="zero", pooling="max").eval()
    with pytest.raises(ExportError, match="max pooling"):
        model_to_nir(m, SHAPE)


def test_gap_module_is_a_plain_mean():
    from engine.models.snn_deep import GlobalAvgPool

    x = torch.randn(2, 3, 4, 5, 6)
    torch.testing.assert_close(
        GlobalAvgPool()(x), nn.AdaptiveAvgPool2d(1)(x.flatten(0, 1)).view(2, 3, 4)
    )
