"""engine.neuro.simulate: closed-form checks of eq. 2-3 and parity with snnTorch's neurons."""

from __future__ import annotations

import math

import numpy as np
import pytest
import snntorch as snn
import torch

from engine.errors import ConfigError
from engine.neuro import lif as lif_torch
from engine.neuro.simulate import (
    beta_from_tau,
    drawn_current,
    make_input,
    population_input,
    pulse_train,
    random_spike_train,
    simulate,
    step_current,
    tau_from_beta,
)


def _snn_run(neuron, x: np.ndarray, n_state: int):
    """Drive an snnTorch neuron step by step; return (spikes, mem) as NumPy."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    state = [torch.zeros_like(xt[0]) for _ in range(n_state)]
    spk_rec, mem_rec = [], []
    with torch.no_grad():
        for t in range(xt.shape[0]):
            out = neuron(xt[t], *state)
            spk, state = out[0], list(out[1:])
            spk_rec.append(spk)
            mem_rec.append(state[-1])
    return torch.stack(spk_rec).numpy(), torch.stack(mem_rec).numpy()


def _random_input(seed=0, steps=200, n=16):
    return np.random.default_rng(seed).uniform(-0.2, 0.9, (steps, n))


# ----- closed form -----------------------------------------------------------------------------


def test_subthreshold_lif_matches_geometric_sum():
    # constant current c below threshold: U[t] = c (1 - beta^(t+1)) / (1 - beta)
    beta, c = 0.8, 0.1
    res = simulate(np.full(50, c), beta=beta, threshold=10.0)
    t = np.arange(50)
    np.testing.assert_allclose(res.membrane, c * (1 - beta ** (t + 1)) / (1 - beta), rtol=1e-12)
    assert res.spike_count == 0


def test_lif_equation_step_by_step_with_weight_and_both_resets():
    x = random_spike_train(200, seed=3)
    for reset in ("subtract", "zero"):
        res = simulate(x, beta=0.819, weight=0.4, threshold=1.0, reset=reset)
        u, s = res.membrane, res.spikes
        assert res.spike_count > 0
        for t in range(1, 200):
            prev_spike = s[t - 1]  # S[t-1] = H(U[t-1] - U_thr) is the reset at step t
            if reset == "subtract":
                expect = 0.819 * u[t - 1] + 0.4 * x[t] - prev_spike * 1.0
            else:
                expect = 0.819 * (1 - prev_spike) * u[t - 1] + 0.4 * x[t]
            assert u[t] == pytest.approx(expect, abs=1e-12)
            assert s[t] == (1.0 if u[t] >= 1.0 else 0.0)


def test_reset_changes_spike_count_as_the_equation_says():
    # a strong constant drive: subtracting the threshold keeps the surplus, zero throws it away
    x = np.full(100, 0.7)
    sub = simulate(x, beta=0.9, threshold=1.0, reset="subtract")
    zero = simulate(x, beta=0.9, threshold=1.0, reset="zero")
    assert sub.spike_count > zero.spike_count > 0
    # with zero reset, after a spike the membrane restarts from the input alone
    first = int(np.argmax(zero.spikes))
    assert zero.membrane[first + 1] == pytest.approx(0.7)


def test_no_reset_never_drops_the_membrane():
    res = simulate(np.full(60, 0.3), beta=0.95, reset="none")
    assert np.all(np.diff(res.membrane) > 0)


def test_beta_from_tau_and_back():
    assert beta_from_tau(5.0, 1.0) == pytest.approx(math.exp(-0.2))
    assert tau_from_beta(beta_from_tau(7.5, 0.5), 0.5) == pytest.approx(7.5)
    a = simulate(np.full(30, 0.2), tau=5.0, dt=1.0)
    b = simulate(np.full(30, 0.2), beta=math.exp(-0.2))
    np.testing.assert_array_equal(a.membrane, b.membrane)
    with pytest.raises(ConfigError):
        beta_from_tau(0.0)


def test_population_parameters_broadcast_per_neuron():
    x = population_input(100, 5, seed=1)
    betas = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    pop = simulate(x, beta=betas, threshold=1.0, weight=0.5)
    assert pop.membrane.shape == pop.spikes.shape == (100, 5)
    for i in range(5):
        one = simulate(x[:, i], beta=float(betas[i]), weight=0.5)
        np.testing.assert_array_equal(pop.membrane[:, i], one.membrane)
    assert pop.spike_count.shape == (5,)


def test_bad_settings_raise_config_errors():
    with pytest.raises(ConfigError, match="model"):
        simulate(np.zeros(5), model="hodgkin")
    with pytest.raises(ConfigError, match="reset"):
        simulate(np.zeros(5), reset="half")
    with pytest.raises(ConfigError, match="threshold"):
        simulate(np.zeros(5), threshold=0)
    with pytest.raises(ConfigError, match="beta"):
        simulate(np.zeros(5), beta=1.5)


# ----- parity with snnTorch and engine.neuro.lif ----------------------------------------------------


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_equals_snntorch_leaky(reset):
    x = _random_input(0)
    ours = simulate(x, beta=0.87, threshold=1.0, weight=1.3, reset=reset)
    spk, mem = _snn_run(snn.Leaky(beta=0.87, threshold=1.0, reset_mechanism=reset), 1.3 * x, 1)
    np.testing.assert_allclose(ours.membrane, mem, atol=1e-6)
    np.testing.assert_array_equal(ours.spikes, spk)
    assert ours.spikes.sum() > 50  # the comparison covered many resets


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_equals_engine_lif_multistep(reset):
    x = _random_input(1)
    ours = simulate(x, beta=0.9, reset=reset)
    spk, mem = lif_torch.lif_multistep(torch.as_tensor(x), beta=0.9, reset=reset)
    np.testing.assert_allclose(ours.membrane, mem.numpy(), atol=1e-9)
    np.testing.assert_array_equal(ours.spikes, spk.numpy())


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_synaptic_equals_snntorch_synaptic(reset):
    x = _random_input(2)
    ours = simulate(x, model="synaptic", alpha=0.7, beta=0.8, reset=reset, weight=0.6)
    spk, mem = _snn_run(snn.Synaptic(alpha=0.7, beta=0.8, reset_mechanism=reset), 0.6 * x, 2)
    np.testing.assert_allclose(ours.membrane, mem, atol=1e-6)
    np.testing.assert_array_equal(ours.spikes, spk)
    assert ours.spikes.sum() > 50
    assert ours.synaptic is not None and ours.synaptic.shape == x.shape


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lapicque_equals_snntorch_lapicque(reset):
    x = _random_input(3)
    ours = simulate(x, model="lapicque", resistance=2.0, capacitance=3.0, dt=0.5, reset=reset)
    neuron = snn.Lapicque(R=2.0, C=3.0, time_step=0.5, reset_mechanism=reset)
    spk, mem = _snn_run(neuron, x, 1)
    np.testing.assert_allclose(ours.membrane, mem, atol=1e-6)
    np.testing.assert_array_equal(ours.spikes, spk)
    assert ours.spikes.sum() > 10


def test_lapicque_from_beta_has_the_same_time_constant():
    # snnTorch's rule: beta only -> R = 1, C = dt / ln(1 / beta); Euler decay 1 - dt / tau
    res = simulate(np.zeros(3), model="lapicque", beta=0.9, mem0=0.5, threshold=5.0)
    decay = 1 - math.log(1 / 0.9)
    np.testing.assert_allclose(res.membrane, 0.5 * decay ** np.arange(1, 4))
    assert res.params["resistance"] == 1.0
    assert res.params["capacitance"] == pytest.approx(tau_from_beta(0.9))


# ----- stimuli ---------------------------------------------------------------------------------


def test_random_spike_train_is_the_reports_fig13_recipe():
    torch.manual_seed(7)
    report = torch.cat((torch.zeros(10), (torch.randint(0, 100, (190,)) > 80).float()), 0)
    np.testing.assert_array_equal(random_spike_train(200, seed=7), report.numpy())
    # about 19 % ones after the 10 leading zeros
    many = random_spike_train(5000, seed=1)
    assert many[:10].sum() == 0
    assert abs(many[10:].mean() - 0.19) < 0.02


def test_step_and_pulse_shapes():
    s = step_current(20, amplitude=0.5, start=5, stop=15)
    assert s[:5].sum() == 0 and np.all(s[5:15] == 0.5) and s[15:].sum() == 0
    p = pulse_train(40, amplitude=2.0, period=10, width=3, start=4)
    on = np.flatnonzero(p)
    np.testing.assert_array_equal(on, [4, 5, 6, 14, 15, 16, 24, 25, 26, 34, 35, 36])
    assert np.all(p[on] == 2.0)


def test_drawn_current_interpolates_and_keeps_last_stroke():
    cur = drawn_current([10, 0, 10], [1.0, 0.0, 2.0], 15)
    assert cur[0] == 0.0 and cur[5] == pytest.approx(1.0) and cur[10] == 2.0
    assert np.all(cur[10:] == 2.0)  # held after the last point
    assert np.all(drawn_current([], [], 8) == 0)
    np.testing.assert_array_equal(make_input("drawn", 15, times=[10, 0, 10], values=[1, 0, 2]), cur)


def test_make_input_names():
    for kind in ("step", "pulses", "random", "drawn"):
        assert make_input(kind, 50).shape == (50,)
    with pytest.raises(ConfigError, match="input"):
        make_input("sine", 50)


def test_population_rates_spread_out():
    x = population_input(2000, 10, p_low=0.0, p_high=0.5, seed=0)
    rates = x.mean(axis=0)
    assert rates[0] == 0.0 and abs(rates[-1] - 0.5) < 0.05
    assert np.all(np.diff(rates[1:]) > -0.05)
