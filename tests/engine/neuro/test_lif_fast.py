"""The fused LIF (engine.neuro.lif.lif_multistep / lif_sequence) equals the per-step reference loop
and snnTorch ``Leaky``: forward spikes and membranes bit for bit, gradients to float rounding."""

from __future__ import annotations

import itertools

import pytest
import snntorch as snn
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.neuro.lif import RESETS, lif_multistep, lif_multistep_reference, lif_sequence
from engine.neuro.surrogate import SURROGATES, snntorch_spike_grad

BACKENDS = ("numba", "torch")
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6)}


def _current(shape, dtype, seed, scale=1.5, shift=0.2):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=dtype) * scale + shift).to(dtype)


def _compare(backend, dtype, reset, surrogate, beta_kind, with_mem0, seed, shape=(7, 3, 5)):
    """Run both implementations on the same data; check forward equality and every gradient."""
    cur = _current(shape, dtype, seed)
    g = torch.Generator().manual_seed(seed + 1)
    if beta_kind == "float":
        beta_a = beta_b = 0.85
    else:
        bshape = () if beta_kind == "scalar" else shape[-1:]
        beta = torch.rand(bshape, generator=g, dtype=dtype) * 0.5 + 0.45
        beta_a = beta.clone().requires_grad_()
        beta_b = beta.clone().requires_grad_()
    mem0 = torch.randn(shape[1:], generator=g, dtype=dtype) * 1.2 if with_mem0 else None
    m_a = mem0.clone().requires_grad_() if with_mem0 else None
    m_b = mem0.clone().requires_grad_() if with_mem0 else None
    c_a, c_b = cur.clone().requires_grad_(), cur.clone().requires_grad_()
    s_a, u_a = lif_sequence(c_a, beta_a, 1.0, reset, surrogate, None, m_a, backend=backend)
    s_b, u_b = lif_multistep_reference(c_b, beta_b, 1.0, reset, surrogate, None, m_b)
    assert torch.equal(s_a, s_b)
    assert torch.equal(u_a, u_b)
    assert 0.0 < float(s_b.detach().mean()) < 1.0  # the data exercise both spikes and silence
    w_s = torch.randn(s_a.shape, generator=g, dtype=dtype)
    w_u = torch.randn(u_a.shape, generator=g, dtype=dtype)
    ((s_a * w_s).sum() + (u_a * w_u).sum()).backward()
    ((s_b * w_s).sum() + (u_b * w_u).sum()).backward()
    tol = TOL[dtype]
    torch.testing.assert_close(c_a.grad, c_b.grad, **tol)
    if beta_kind != "float":
        torch.testing.assert_close(beta_a.grad, beta_b.grad, **tol)
    if with_mem0:
        torch.testing.assert_close(m_a.grad, m_b.grad, **tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_equals_reference_all_resets_and_surrogates(backend, reset, surrogate):
    for dtype, beta_kind, with_mem0 in itertools.product(
        (torch.float32, torch.float64), ("float", "scalar", "channel"), (False, True)
    ):
        _compare(backend, dtype, reset, surrogate, beta_kind, with_mem0, seed=3)


@settings(max_examples=25, deadline=None)
@given(
    steps=st.integers(1, 12),
    batch=st.integers(1, 4),
    width=st.integers(1, 9),
    reset=st.sampled_from(RESETS),
    surrogate=st.sampled_from(SURROGATES),
    backend=st.sampled_from(BACKENDS),
    seed=st.integers(0, 10_000),
)
def test_equals_reference_random_shapes(steps, batch, width, reset, surrogate, backend, seed):
    cur = _current((steps, batch, width), torch.float32, seed)
    s_a, u_a = lif_sequence(cur, 0.8, 1.0, reset, surrogate, backend=backend)
    s_b, u_b = lif_multistep_reference(cur, 0.8, 1.0, reset, surrogate)
    assert torch.equal(s_a, s_b) and torch.equal(u_a, u_b)
    c_a, c_b = cur.clone().requires_grad_(), cur.clone().requires_grad_()
    w = torch.randn(cur.shape, generator=torch.Generator().manual_seed(seed))
    (lif_sequence(c_a, 0.8, 1.0, reset, surrogate, backend=backend)[0] * w).sum().backward()
    (lif_multistep_reference(c_b, 0.8, 1.0, reset, surrogate)[0] * w).sum().backward()
    torch.testing.assert_close(c_a.grad, c_b.grad, **TOL[torch.float32])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", RESETS)
def test_upstream_weight_gradients(backend, reset):
    """BPTT through two layers: Linear -> LIF -> Linear -> LIF, gradients of both weights."""
    torch.manual_seed(0)
    x = torch.rand(9, 4, 6)
    layers = [torch.nn.Linear(6, 8), torch.nn.Linear(8, 3)]
    grads = []
    for fn in (lambda c: lif_sequence(c, 0.9, 1.0, reset, backend=backend), None):
        fn = fn or (lambda c: lif_multistep_reference(c, 0.9, 1.0, reset))
        for lay in layers:
            lay.zero_grad()
        s1, _ = fn(layers[0](x) * 2.0)
        s2, m2 = fn(layers[1](s1) * 3.0)
        (s2.sum(0).logsumexp(1).sum() + m2.square().mean()).backward()
        grads.append([p.grad.clone() for lay in layers for p in lay.parameters()])
    for a, b in zip(*grads):
        assert b.abs().max() > 0
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_equals_snntorch_leaky(backend, reset, surrogate):
    cur = _current((10, 2, 6), torch.float32, seed=7)
    leaky = snn.Leaky(
        beta=0.8,
        threshold=1.0,
        spike_grad=snntorch_spike_grad(surrogate),
        reset_mechanism=reset,
    )
    c_ref = cur.clone().requires_grad_()
    mem = leaky.init_leaky()
    spk_rec, mem_rec = [], []
    for t in range(cur.shape[0]):
        spk, mem = leaky(c_ref[t], mem)
        spk_rec.append(spk)
        mem_rec.append(mem)
    s_ref, u_ref = torch.stack(spk_rec), torch.stack(mem_rec)
    c_ours = cur.clone().requires_grad_()
    s, u = lif_sequence(c_ours, 0.8, 1.0, reset, surrogate, backend=backend)
    assert torch.equal(s, s_ref)
    assert torch.equal(u, u_ref)
    w = torch.randn(cur.shape, generator=torch.Generator().manual_seed(1))
    (s_ref * w).sum().backward()
    (s * w).sum().backward()
    torch.testing.assert_close(c_ours.grad, c_ref.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_constant_current(backend):
    """A direct-current input (``steps=`` or an expand over T) equals the expanded reference;
    its gradient is summed over time."""
    static = _current((3, 4, 5), torch.float32, seed=11, scale=0.6, shift=0.3)
    ref_in = static.clone().requires_grad_()
    s_b, u_b = lif_multistep_reference(ref_in.unsqueeze(0).expand(8, 3, 4, 5), 0.9)
    w = torch.randn(s_b.shape, generator=torch.Generator().manual_seed(2))
    (s_b * w + u_b).sum().backward()
    for make in (
        lambda c: lif_sequence(c, 0.9, steps=8, backend=backend),
        lambda c: lif_sequence(c.unsqueeze(0).expand(8, 3, 4, 5), 0.9, backend=backend),
        lambda c: lif_sequence(c.unsqueeze(0).expand(8, 3, 4, 5)[:, 1:], 0.9, backend=backend),
    ):
        c = static.clone().requires_grad_()
        s_a, u_a = make(c)
        rows = slice(1, None) if s_a.shape[1] == 2 else slice(None)
        assert torch.equal(s_a, s_b[:, rows]) and torch.equal(u_a, u_b[:, rows])
        if s_a.shape[1] == 3:
            (s_a * w + u_a).sum().backward()
            torch.testing.assert_close(c.grad, ref_in.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_channels_last_layout_is_kept(backend):
    """A channels-last current gives channels-last spikes (the next convolution needs no copy)."""
    cur = _current((4, 2, 3, 5, 6), torch.float32, seed=5)
    cl = torch.stack([c.contiguous(memory_format=torch.channels_last) for c in cur])
    s, u = lif_sequence(cl, 0.9, backend=backend)
    s_ref, u_ref = lif_multistep_reference(cur, 0.9)
    assert torch.equal(s, s_ref) and torch.equal(u, u_ref)
    if backend == "numba":
        assert s.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)


def test_time_first_multistep_convention():
    """``[T, B, ...]`` in, ``[T, B, ...]`` out; step t depends on inputs 0..t only, and the
    closed form of a sub-threshold step holds (snnTorch's ``mem[1] == beta*mem[0] + x[1]``)."""
    cur = torch.full((6, 2, 3), 0.3)
    cur[:, 1] = 0.05
    spk, mem = lif_multistep(cur, beta=0.5)
    assert spk.shape == mem.shape == (6, 2, 3)
    torch.testing.assert_close(mem[1], 0.5 * mem[0] + cur[1])
    assert torch.equal(mem[0], cur[0])
    later = cur.clone()
    later[4:] = 5.0  # changing the future leaves the past alone
    spk2, mem2 = lif_multistep(later, beta=0.5)
    assert torch.equal(mem2[:4], mem[:4]) and torch.equal(spk2[:4], spk[:4])
    assert not torch.equal(mem2[4:], mem[4:])
    # batch items are independent: each row equals the same neuron run alone
    alone_spk, alone_mem = lif_multistep(cur[:, 1:2], beta=0.5)
    assert torch.equal(alone_mem, mem[:, 1:2])


def test_half_precision_current_integrates_in_float32():
    cur = _current((20, 2, 4), torch.float32, seed=9).to(torch.bfloat16)
    spk, mem = lif_multistep(cur)
    assert spk.dtype == torch.bfloat16 and mem.dtype == torch.float32
    s_ref, u_ref = lif_multistep_reference(cur.float())
    assert torch.equal(spk.float(), s_ref) and torch.equal(mem, u_ref)


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("learn_beta", [False, True])
def test_bf16_current_stays_bf16_in_the_numba_kernels(reset, static, learn_beta):
    """Under autocast the kernels read a bf16 current and write bf16 spikes and a bf16 current
    gradient: the float32 path's numbers, the gradient rounded to nearest even once."""
    shape = (4, 2500) if static else (9, 4, 2500)  # more than one block of neurons
    cur = _current(shape, torch.float32, seed=11).to(torch.bfloat16)
    kw = dict(steps=9) if static else {}
    beta = torch.full((2500,), 0.8) if learn_beta else 0.8
    b_a = beta.clone().requires_grad_() if learn_beta else beta
    b_b = beta.clone().requires_grad_() if learn_beta else beta
    c_a, c_b = cur.clone().requires_grad_(), cur.float().requires_grad_()
    s_a, u_a = lif_sequence(c_a, b_a, 1.0, reset, **kw)
    s_b, u_b = lif_sequence(c_b, b_b, 1.0, reset, **kw)
    assert s_a.dtype == torch.bfloat16 and u_a.dtype == torch.float32
    assert torch.equal(s_a.float(), s_b) and torch.equal(u_a, u_b)
    g = torch.Generator().manual_seed(12)
    w_s = torch.randn(s_a.shape, generator=g).bfloat16()  # what autocast hands back: bf16
    w_u = torch.randn(u_a.shape, generator=g)
    ((s_a * w_s).float().sum() + (u_a * w_u).sum()).backward()
    ((s_b * w_s.float()).sum() + (u_b * w_u).sum()).backward()
    assert c_a.grad.dtype == torch.bfloat16
    assert torch.equal(c_a.grad, c_b.grad.bfloat16())
    if learn_beta:
        torch.testing.assert_close(b_a.grad, b_b.grad, rtol=1e-5, atol=1e-5)


def test_bf16_current_on_the_torch_path_integrates_a_float32_copy():
    cur = _current((6, 3, 5), torch.float32, seed=13).to(torch.bfloat16).requires_grad_()
    spk, mem = lif_sequence(cur, backend="torch")
    assert spk.dtype == torch.bfloat16 and mem.dtype == torch.float32
    s_ref, u_ref = lif_multistep_reference(cur.detach().float())
    assert torch.equal(spk.float(), s_ref) and torch.equal(mem, u_ref)
    spk.float().sum().backward()
    assert cur.grad.dtype == torch.bfloat16


def test_no_grad_path_and_empty_sequence():
    cur = _current((5, 3), torch.float32, seed=1)
    with torch.no_grad():
        s, u = lif_multistep(cur.requires_grad_())
    assert not s.requires_grad and torch.equal(u, lif_multistep_reference(cur.detach())[1])
    s, u = lif_multistep(torch.zeros(0, 2, 3))
    assert s.shape == u.shape == (0, 2, 3)


def test_bad_arguments_raise_config_errors():
    cur = torch.zeros(3, 2)
    with pytest.raises(ConfigError, match="reset"):
        lif_multistep(cur, reset="soft")
    with pytest.raises(ConfigError, match="surrogate"):
        lif_multistep(cur, surrogate="relu")
    with pytest.raises(ConfigError, match="backend"):
        lif_sequence(cur, backend="cuda")
    with pytest.raises(ConfigError, match="numba"):
        lif_sequence(cur.to(torch.int32), backend="numba")


def test_threads_can_run_it_at_once():
    """Training on a worker thread while another classifies: results as if run alone."""
    import threading

    cur = _current((12, 64, 50), torch.float32, seed=21)
    want = lif_multistep_reference(cur)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                c = cur.clone().requires_grad_()
                s, u = lif_multistep(c)
                s.sum().backward()
                results.append(torch.equal(s, want[0]) and torch.equal(u, want[1]))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(results) == 15 and all(results)
