"""engine.neuro.encoders: statistics of each code, kinds and shapes, parity with snntorch.spikegen."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from snntorch import spikegen

from engine.errors import ConfigError
from engine.neuro.encoders import (
    ENCODERS,
    delta,
    direct,
    encode,
    latency,
    latency_times,
    rate,
    spike_stats,
)


def _image(seed=0, shape=(12, 12)):
    return np.random.default_rng(seed).random(shape)


# ----- rate --------------------------------------------------------------------------------------


def test_rate_mean_over_time_approaches_intensity():
    x = np.linspace(0, 1, 11)
    for steps in (200, 5000):
        s = rate(x, steps, seed_or_generator=0)
        err = np.abs(s.mean(axis=0) - x)
        # within 4 standard errors of a Bernoulli mean
        assert np.all(err <= 4 * np.sqrt(x * (1 - x) / steps) + 1e-12)
    assert np.abs(rate(x, 5000, seed_or_generator=1).mean(0) - x).max() < 0.03
    # black never fires, white always does
    assert s[:, 0].sum() == 0 and s[:, -1].sum() == 5000


def test_rate_gain_scales_and_clips():
    x = np.full(1000, 0.4)
    assert rate(x, 50, gain=0.5, seed_or_generator=0).mean() == pytest.approx(0.2, abs=0.01)
    assert rate(x, 50, gain=3.0, seed_or_generator=0).mean() == 1.0


def test_rate_is_seeded_and_keeps_kind_and_device():
    x = _image()
    a, b = rate(x, 20, seed_or_generator=5), rate(x, 20, seed_or_generator=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, rate(x, 20, seed_or_generator=6))
    assert isinstance(a, np.ndarray) and a.shape == (20, 12, 12)
    xt = torch.as_tensor(x, dtype=torch.float32)
    t1 = rate(xt, 20, seed_or_generator=torch.Generator().manual_seed(2))
    t2 = rate(xt, 20, seed_or_generator=2)
    assert isinstance(t1, torch.Tensor) and t1.shape == (20, 12, 12) and t1.dtype == torch.float32
    assert torch.equal(t1, t2)
    rng = np.random.default_rng(9)
    assert rate(x, 3, seed_or_generator=rng).shape == (3, 12, 12)


def test_rate_equals_snntorch_with_the_same_seed():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(11)
    ref = spikegen.rate(x, num_steps=15, gain=0.8)
    ours = rate(x, 15, gain=0.8, seed_or_generator=torch.Generator().manual_seed(11))
    assert torch.equal(ours, ref)


# ----- latency -----------------------------------------------------------------------------------


@pytest.mark.parametrize("linear", [False, True])
def test_latency_brighter_spikes_earlier_once(linear):
    x = np.linspace(0.05, 1.0, 20)
    s = latency(x, 40, tau=5.0, threshold=0.01, linear=linear, normalize=True)
    assert np.all(s.sum(axis=0) == 1)  # exactly one spike each
    first = s.argmax(axis=0)
    assert np.all(np.diff(first) <= 0)  # never later for a brighter input
    assert first[-1] < first[0]


def test_latency_log_matches_rc_charging_time():
    # t = tau ln(x / (x - thr)): the time an RC neuron driven by x takes to reach thr
    x = np.array([0.2, 0.5, 0.9])
    t = latency_times(x, 100, tau=5.0, threshold=0.1, normalize=False)
    np.testing.assert_allclose(t, 5.0 * np.log(x / (x - 0.1)))
    s = latency(x, 100, tau=5.0, threshold=0.1, normalize=False)
    np.testing.assert_array_equal(s.argmax(0), np.round(t).astype(int))


def test_latency_clip_and_range_checks():
    x = np.array([0.0, 0.005, 0.5, 1.0])
    kept = latency(x, 10, threshold=0.01, clip=False)
    clipped = latency(x, 10, threshold=0.01, clip=True)
    assert kept.sum() == 4 and clipped.sum() == 2
    assert kept[9, 0] == 1  # dark inputs fire at the last step when normalised
    with pytest.raises(ConfigError, match="normalise"):
        latency(np.array([1.5]), 10)
    with pytest.raises(ConfigError, match="threshold"):
        latency(np.array([0.5]), 10, threshold=1.0)


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("clip", [False, True])
def test_latency_equals_snntorch(linear, normalize, clip):
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    kw = dict(tau=5.0, threshold=0.05, linear=linear, normalize=normalize, clip=clip)
    # bypass lets snnTorch drop late spikes (as ours does) instead of raising
    ref = spikegen.latency(x, num_steps=25, bypass=True, **kw)
    ours_t = latency(x, 25, **kw)
    ours_np = latency(x.numpy(), 25, **kw)
    assert torch.equal(ours_t, ref)
    np.testing.assert_array_equal(ours_np, ref.numpy())
    assert ref.sum() > 0


# ----- delta -------------------------------------------------------------------------------------


def test_delta_spikes_only_where_the_input_changes():
    x = np.zeros((60, 4))
    x[20:] += 1.0  # one rise
    x[40:, 1] -= 1.0  # and one fall in column 1
    s = delta(x, threshold=0.5, off_spike=True, padding=True)
    changed = np.abs(np.diff(x, axis=0, prepend=x[:1])) >= 0.5
    np.testing.assert_array_equal(s != 0, changed)
    assert s[20].tolist() == [1, 1, 1, 1] and s[40, 1] == -1
    # slow drifts below the threshold never spike
    ramp = np.linspace(0, 3, 100)
    assert delta(ramp, threshold=0.1, padding=True).sum() == 0


@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("off_spike", [False, True])
def test_delta_equals_snntorch(padding, off_spike):
    seq = torch.randn(80, 3, 5, generator=torch.Generator().manual_seed(4)).cumsum(0)
    ref = spikegen.delta(seq, threshold=0.6, padding=padding, off_spike=off_spike)
    assert torch.equal(delta(seq, 0.6, off_spike, padding), ref)
    np.testing.assert_array_equal(delta(seq.numpy(), 0.6, off_spike, padding), ref.numpy())


# ----- encode / direct / stats ------------------------------------------------------------------


def test_encode_dispatches_every_name_time_first():
    x = _image(shape=(5, 7))
    for name in ENCODERS:
        params = {"seed_or_generator": 0} if name == "rate" else {}
        out = encode(name, x, 9, **params)
        assert out.shape == (9, 5, 7), name
    np.testing.assert_array_equal(encode("direct", x, 3)[2], x.astype(np.float32))
    # a static input held from step 0: delta spikes once, at the onset
    d = encode("delta", x, 6, threshold=0.5)
    np.testing.assert_array_equal(d[0], (x >= 0.5).astype(np.float32))
    assert d[1:].sum() == 0
    # or read an axis as time (an MFCC [coeffs, frames] read along its frames)
    d2 = encode("delta", x, 0, time_axis=1, threshold=0.2)
    assert d2.shape == (7, 5)
    np.testing.assert_array_equal(d2, delta(x.T, threshold=0.2))
    with pytest.raises(ConfigError, match="encoder"):
        encode("burst", x, 3)


def test_encode_on_torch_keeps_torch():
    x = torch.rand(4, 1, 6, 6)
    for name in ENCODERS:
        params = {"seed_or_generator": torch.Generator().manual_seed(0)} if name == "rate" else {}
        out = encode(name, x, 5, **params)
        assert isinstance(out, torch.Tensor) and out.shape == (5, 4, 1, 6, 6), name
    assert torch.equal(direct(x, 2)[1], x)


def test_spike_stats():
    s = np.zeros((10, 10))
    s[0, :5] = 1
    s[1, 0] = -1
    st = spike_stats(s)
    assert st["spikes"] == 6 and st["on"] == 5 and st["off"] == 1
    assert st["sparsity"] == pytest.approx(0.94)
    with pytest.raises(ConfigError, match="steps"):
        rate(np.ones(3), 0)
