"""ALIF neurons: the closed form, LIF when adaptation is off, state carried across chunks."""

from __future__ import annotations

import pytest
import torch

from engine.errors import ConfigError
from engine.neuro.alif import ALIF, ALIFParams, alif_fused, alif_init, alif_sequence, alif_step
from engine.neuro.lif import lif_multistep


def test_one_neuron_follows_the_closed_form():
    # beta = rho = 0.5, threshold 1, adapt 1, reset by subtracting the crossed threshold
    p = ALIFParams(beta=0.5, rho=0.5, threshold=1.0, adapt=1.0, reset="subtract")
    cur = torch.tensor([1.2, 0.5, 1.5, 0.0, 3.0]).view(5, 1, 1)
    spk, mem, state = alif_sequence(cur, p)
    # t0: U = 1.2, a = 0, Th = 1 -> spike
    # t1: U = 0.6 + 0.5 - 1 = 0.1, a = 0 + 1 = 1, Th = 2 -> none
    # t2: U = 0.05 + 1.5 = 1.55, a = 0.5, Th = 1.5 -> spike
    # t3: U = 0.775 - 1.5 = -0.725, a = 0.25 + 1 = 1.25, Th = 2.25 -> none
    # t4: U = -0.3625 + 3 = 2.6375, a = 0.625, Th = 1.625 -> spike
    torch.testing.assert_close(mem.view(-1), torch.tensor([1.2, 0.1, 1.55, -0.725, 2.6375]))
    assert spk.view(-1).tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]
    torch.testing.assert_close(state.adapt.view(-1), torch.tensor([0.625]))
    # reset to zero: the membrane is cleared instead
    pz = p._replace(reset="zero")
    _, mem_z, _ = alif_sequence(cur, pz)
    assert float(mem_z[1]) == pytest.approx(0.5)  # 0.5 * (1 - 1) * 1.2 + 0.5


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_without_adaptation_it_is_the_fast_lif(reset):
    g = torch.Generator().manual_seed(1)
    cur = torch.rand(30, 4, 16, generator=g) * 0.8
    spk, mem, _ = alif_sequence(cur, ALIFParams(beta=0.8, rho=0.9, adapt=0.0, reset=reset))
    want_spk, want_mem = lif_multistep(cur, 0.8, 1.0, reset)
    assert torch.equal(spk, want_spk)
    torch.testing.assert_close(mem, want_mem, rtol=0, atol=1e-6)
    assert spk.sum() > 10  # the comparison sees spikes


def test_adaptation_lowers_the_firing_rate_under_a_constant_drive():
    cur = torch.full((200, 1, 1), 0.6)
    plain = alif_sequence(cur, ALIFParams(beta=0.9, rho=0.98, adapt=0.0))[0].sum()
    adapted = alif_sequence(cur, ALIFParams(beta=0.9, rho=0.98, adapt=1.0))[0].sum()
    assert plain > 2 * adapted > 0


def test_chunks_with_carried_state_equal_one_pass_with_recurrence():
    g = torch.Generator().manual_seed(2)
    cur = torch.randn(25, 3, 8, generator=g)
    w = torch.randn(8, 8, generator=g) * 0.5
    p = ALIFParams(beta=0.9, rho=0.95, adapt=0.5)
    spk, mem, end = alif_sequence(cur, p, rec_weight=w)
    s1, m1, mid = alif_sequence(cur[:11], p, rec_weight=w)
    s2, m2, end2 = alif_sequence(cur[11:], p, mid, rec_weight=w)
    assert torch.equal(torch.cat([s1, s2]), spk) and torch.equal(torch.cat([m1, m2]), mem)
    assert all(torch.equal(a, b) for a, b in zip(end, end2))
    # the recurrent weights matter: without them the spikes differ
    assert not torch.equal(alif_sequence(cur, p)[0], spk)


def test_step_function_is_pure_and_module_learns_beta():
    state = alif_init((2, 3))
    cur = torch.ones(2, 3) * 1.5
    s, new = alif_step(cur, state, ALIFParams())
    assert s.sum() == 6 and torch.equal(state.mem, torch.zeros(2, 3))  # input state untouched
    assert torch.equal(new.spk, s)
    layer = ALIF(beta=0.7, learn_beta=True, rho=0.9, adapt=0.3)
    x = (torch.rand(12, 2, 5, generator=torch.Generator().manual_seed(0)) * 2).requires_grad_()
    spk, mem, _ = layer(x)
    (spk.sum() + mem.sum()).backward()
    assert layer.beta.grad is not None and float(layer.beta.grad) != 0.0
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "opts, field",
    [
        ({"reset": "none"}, "reset"),
        ({"rho": 1.5}, "rho"),
        ({"adapt": -1.0}, "adapt"),
        ({"beta": "x"}, "beta"),
    ],
)
def test_bad_options_give_one_line_naming_the_field(opts, field):
    with pytest.raises(ConfigError, match=field) as err:
        ALIF(**opts)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_fused_path_equals_the_plain_loop_spikes_exact_gradients_close(reset):
    g = torch.Generator().manual_seed(4)
    cur = (torch.randn(40, 6, 24, generator=g) * 0.8).requires_grad_()
    w = (torch.randn(24, 24, generator=g) * 0.3).requires_grad_()
    beta = torch.tensor(0.85, requires_grad=True)
    p = ALIFParams(beta=beta, rho=0.95, adapt=0.7, reset=reset)
    g_spk, g_mem = torch.randn(40, 6, 24, generator=g), torch.randn(40, 6, 24, generator=g)
    results = []
    for fn in (alif_sequence, alif_fused):
        spk, mem, end = fn(cur, p, rec_weight=w)
        loss = (spk * g_spk).sum() + (mem * g_mem).sum() + end.adapt.sum()
        results.append((spk, mem, end, *torch.autograd.grad(loss, [cur, w, beta])))
    (s0, m0, e0, *g0), (s1, m1, e1, *g1) = results
    assert torch.equal(s0, s1) and 0.02 < float(s0.detach().mean()) < 0.5
    assert torch.equal(m0, m1) and all(torch.equal(a, b) for a, b in zip(e0, e1))
    for a, b in zip(g0, g1):
        assert a.abs().max() > 0
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * float(a.abs().max()))
