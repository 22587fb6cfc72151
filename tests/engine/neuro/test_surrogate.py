"""engine.neuro.surrogate: Heaviside forward, each surrogate's backward equals its analytic derivative."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from snntorch import surrogate as snn_surrogate

from engine.errors import ConfigError
from engine.neuro.surrogate import (
    SURROGATES,
    curves,
    default_slope,
    heaviside,
    snntorch_spike_grad,
    spike,
)

X = np.linspace(-3, 3, 601)


@pytest.mark.parametrize("name", SURROGATES)
@pytest.mark.parametrize("slope", [None, 0.7, 5.0])
def test_backward_equals_analytic_derivative(name, slope):
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    out = spike(x, name, slope)
    # forward is the exact Heaviside step, whatever the surrogate
    np.testing.assert_array_equal(out.detach().numpy(), heaviside(X))
    out.sum().backward()
    _, d = curves(name, X, slope)
    np.testing.assert_allclose(x.grad.numpy(), d, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", SURROGATES)
def test_plotted_derivative_is_the_derivative_of_the_plotted_function(name):
    # central differences of f match f' (so the plot shows a function and its real derivative)
    f, d = curves(name, X, 3.0)
    h = X[1] - X[0]
    numeric = (f[2:] - f[:-2]) / (2 * h)
    ok = np.abs(X[1:-1]) > 2 * h  # fast_sigmoid has a kink in f' at 0
    np.testing.assert_allclose(numeric[ok], d[1:-1][ok], rtol=2e-3, atol=1e-5)
    # f rises from 0 to 1 through 1/2 at the threshold
    assert f[0] < 0.1 and f[-1] > 0.9 and f[300] == pytest.approx(0.5)


def test_default_slopes_peak_at_one():
    for name in SURROGATES:
        _, d = curves(name, np.array([0.0]))
        assert d[0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("name", "reference"),
    [("arctan", lambda k: snn_surrogate.atan(alpha=k)), ("sigmoid", snn_surrogate.sigmoid)],
)
def test_backward_equals_snntorch(name, reference):
    k = 3.0
    x1 = torch.linspace(-2, 2, 101, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    spike(x1, name, k).sum().backward()
    reference(k)(x2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)


def test_snntorch_adapter_and_unknown_name():
    fn = snntorch_spike_grad("fast_sigmoid", 2.0)
    x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    fn(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), curves("fast_sigmoid", x.detach().numpy(), 2.0)[1])
    with pytest.raises(ConfigError):
        spike(x, "relu")
    with pytest.raises(ConfigError):
        default_slope("step")
