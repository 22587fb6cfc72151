"""srnn (ALIF layers reading a spectrogram frame by frame) and its Elman twin rnn."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engine.errors import ConfigError, ExportError
from engine.models.registry import (
    TWINS,
    SpikingOutput,
    build_model,
    layer_macs,
    ops_per_inference,
    run_model,
)
from engine.neuro.alif import ALIF

SHAPE = (1, 12, 30)  # 12 features x 30 frames


def _seeded(name, shape=SHAPE, seed=0, **opts):
    torch.manual_seed(seed)
    return build_model(name, shape, 4, **{"hidden": [24, 16], **opts})


def _fitted(model, x):
    model.input_norm.fit(x)
    model.train()
    for _ in range(3):
        model(x)  # batch-norm running statistics
    return model.eval()


def test_time_axis_is_the_frames_and_later_frames_do_not_change_earlier_output():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, *SHAPE, generator=g)
    m = _fitted(_seeded("srnn"), x)
    out = run_model(m, x, steps=7, record=True)  # steps does not apply: one step per frame
    assert isinstance(out, SpikingOutput) and out.spikes.shape == (30, 3, 4)
    assert set(out.record) == set(m.layer_names) == {"alif1", "alif2", "out"}
    for spk, _mem in out.record.values():
        assert spk.shape[:2] == (30, 3) and set(spk.unique().tolist()) <= {0.0, 1.0}
    assert out.record["alif1"][0].sum() > 0 and out.record["alif2"][0].sum() > 0
    y = x.clone()
    y[..., 20:] = torch.randn(3, 1, 12, 10, generator=g)
    changed = m(y)
    torch.testing.assert_close(changed.mem[:20], out.mem[:20], rtol=0, atol=0)
    assert not torch.equal(changed.mem[20:], out.mem[20:])


@pytest.mark.parametrize("cuts", [[30], [1, 29], [7, 11, 12], [10, 0, 20]])
def test_streaming_with_carried_state_equals_one_pass(cuts):
    x = torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(1))
    m = _fitted(_seeded("srnn", learn_beta=True), x)
    with torch.no_grad():
        whole = m(x, record=True)
        state = m.init_state(2)
        parts, at = [], 0
        for n in cuts:
            out, state = m.forward_stream(x[..., at : at + n], state, record=True)
            parts.append(out)
            at += n
    spikes = torch.cat([p.spikes for p in parts])
    assert torch.equal(spikes, whole.spikes)
    torch.testing.assert_close(torch.cat([p.mem for p in parts]), whole.mem, rtol=0, atol=1e-6)
    for name in ("alif1", "alif2"):
        got = torch.cat([p.record[name][0] for p in parts])
        assert torch.equal(got, whole.record[name][0]), name
    # the carried state matters: starting each chunk from rest gives other output
    if len(cuts) > 1:
        fresh = torch.cat(
            [m.forward_stream(x[..., : cuts[0]])[0].mem, m.forward_stream(x[..., cuts[0] :])[0].mem]
        )
        assert not torch.allclose(fresh, whole.mem)


def test_twin_has_the_same_layers_with_tanh_for_alif():
    snn, ann = _seeded("srnn"), _seeded("rnn")
    assert TWINS["srnn"] == "rnn"

    def layers(model, to_twin=False):
        rows = []
        for name, mod in model.named_modules():
            kind = type(mod).__name__
            if to_twin and isinstance(mod, ALIF):
                kind = "Tanh"
            if to_twin and name == "out":
                kind = "Identity"
            rows.append((name, kind))
        return rows[1:]

    assert layers(ann) == layers(snn, to_twin=True)
    weights = {k: v.shape for k, v in snn.state_dict().items() if not k.endswith(".beta")}
    assert weights == {k: v.shape for k, v in ann.state_dict().items()}
    # the twin takes the spiking model's options (ALIF and LIF ones are dropped)
    build_model("rnn", SHAPE, 4, hidden=8, rho=0.9, adapt=1.0, beta=0.7)
    out = ann(torch.randn(5, *SHAPE))
    assert out.shape == (5, 4)


def test_both_learn_a_task_that_needs_the_order_of_frames():
    # rising vs falling sweeps: the same frames, in opposite order
    g = torch.Generator().manual_seed(3)
    n, f, t = 24, 8, 22
    y = torch.arange(n) % 2
    x = torch.zeros(n, 1, f, t)
    for i in range(n):
        start = int(torch.randint(0, 5, (1,), generator=g))
        for k in range(f):
            col = start + 2 * (k if y[i] == 0 else f - 1 - k)
            x[i, 0, k, col : col + 2] = 1.0
    x += 0.1 * torch.randn(x.shape, generator=g)
    for name in ("srnn", "rnn"):
        torch.manual_seed(0)
        m = build_model(name, (1, f, t), 2, hidden=16, beta=0.8, rho=0.9, adapt=0.5)
        m.input_norm.fit(x)
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        for _ in range(25):
            out = m(x)
            logits = out.mem.mean(0) if name == "srnn" else out
            loss = torch.nn.functional.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        m.eval()
        with torch.no_grad():
            out = m(x)
            logits = out.mem.mean(0) if name == "srnn" else out
        assert float((logits.argmax(1) == y).float().mean()) >= 0.8, name  # chance: 0.5


def test_spike_encoders_and_nir_are_refused_with_one_line():
    m = _seeded("srnn")
    with pytest.raises(ConfigError, match="frame by frame") as err:
        run_model(m, torch.rand(2, *SHAPE), steps=5, encoder="rate")
    assert "\n" not in str(err.value)
    from engine.export.nir import model_to_nir

    with pytest.raises(ExportError, match="adaptive threshold") as err:
        model_to_nir(m.eval(), SHAPE)
    assert "\n" not in str(err.value)


def test_macs_and_synops_count_the_recurrent_maps_and_every_frame():
    m = _seeded("srnn")
    macs = layer_macs(m, SHAPE)
    assert macs["recs.0"] == 24 * 24 and macs["recs.1"] == 16 * 16
    assert macs["fcs.0"] == 12 * 24 * 30 and macs["fcs.1"] == 24 * 16 and macs["fc"] == 16 * 4
    rates = {"alif1": 0.1, "alif2": 0.2}
    ops = ops_per_inference(m, macs, rates, steps=5)  # steps is the run config's, not used
    want = (24 * 24 * 0.1 + 24 * 16 * 0.1 + 16 * 16 * 0.2 + 16 * 4 * 0.2) * 30
    assert ops["synops"] == pytest.approx(want) and ops["macs"] == 12 * 24 * 30
    ann = layer_macs(_seeded("rnn"), SHAPE)
    assert ann == {
        "fcs.0": 12 * 24 * 30,
        "fcs.1": 24 * 16 * 30,
        "recs.0": 24 * 24 * 30,
        "recs.1": 16 * 16 * 30,
        "fc": 16 * 4 * 30,
    }


@pytest.mark.parametrize(
    "opts, text",
    [
        ({"hidden": [8, 8, 8]}, "hidden"),
        ({"hidden": 0}, "hidden"),
        ({"rho": 2.0}, "rho"),
        ({"reset": "none"}, "reset"),
        ({"hiden": 3}, "model_options for srnn"),
    ],
)
def test_bad_options_give_one_line(opts, text):
    with pytest.raises(ConfigError, match=text):
        build_model("srnn", SHAPE, 4, **opts)


@dataclasses.dataclass(frozen=True)
class _Frames:
    x: np.ndarray
    y: np.ndarray
    splits: dict
    class_names: list
    feature_config: dict
    spec: str = "test:frames"


@pytest.mark.parametrize("name", ["srnn", "scnn_gap"])
def test_training_run_shows_traces_and_synops(name, tmp_path):
    from engine.train.config import RunConfig
    from engine.train.events import EpochEnd, Traces
    from engine.train.loop import train

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 1, 12, 16)).astype(np.float32)
    y = np.arange(40) % 2
    x[y == 1, 0, :6] += 1.0
    data = _Frames(
        x,
        y,
        {"train": np.arange(30), "val": np.arange(30, 40), "test": np.arange(30, 40)},
        ["a", "b"],
        {"kind": "mfcc"},
    )
    opts = {"hidden": 16} if name == "srnn" else {"channels": [4, 8], "kernels": [3, 3]}
    cfg = RunConfig(model=name, model_options=opts, steps=4, epochs=1, batch=10, seed=0)
    events = []
    gen = train(cfg, tmp_path / "run", data=data)
    while True:
        try:
            events.append(next(gen))
        except StopIteration:
            break
    traces = [e for e in events if isinstance(e, Traces)]
    model = build_model(name, (1, 12, 16), 2, **opts)
    assert traces and [lt.name for lt in traces[-1].layers] == list(model.layer_names)
    first = traces[-1].layers[0]
    assert first.mem.shape[0] == (16 if name == "srnn" else 4)  # frames or steps
    end = [e for e in events if isinstance(e, EpochEnd)][-1]
    assert end.synops > 0 and {s.name for s in end.layers} == set(model.layer_names)


def test_spike_trains_feed_one_bin_per_step():
    # encoder "spikes" (SHD-like data): [B, C, H, T] spikes, the last axis is time
    m = build_model("srnn", (1, 12, 30), 4, hidden=16, spike_input=True, input_norm="none").eval()
    x = (torch.rand(2, 1, 12, 30, generator=torch.Generator().manual_seed(5)) < 0.2).float()
    out = run_model(m, x, steps=30, encoder="spikes", record=True)
    assert out.spikes.shape == (30, 2, 4) and out.record["alif1"][0].sum() > 0
    frames = m(x)  # the same spikes read as a spectrogram, frame by frame
    assert torch.equal(out.mem, frames.mem)
