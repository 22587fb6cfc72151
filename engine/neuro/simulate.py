"""Single neurons and populations in NumPy: LIF, Lapicque (RC) and synaptic models.

All models step in discrete time (step ``dt``), time on axis 0, with snnTorch's ordering: the
reset at step ``t`` comes from the previous membrane, ``R[t] = H(U[t-1] - U_thr)``, and the spike
from the new one, ``S[t] = H(U[t] - U_thr)``, where ``H(x) = 1 if x >= 0``. ``U[-1] = mem0``.
The input current is ``I[t] = W * X[t]``.

``lif`` (the report's eq. 2-3, snnTorch ``Leaky``; the same update as ``engine.neuro.lif``)::

    U[t] = beta * U[t-1] + I[t] - R[t] * U_thr             reset="subtract"
    U[t] = beta * (1 - R[t]) * U[t-1] + I[t]               reset="zero"
    U[t] = beta * U[t-1] + I[t]                            reset="none"

``lapicque`` (forward-Euler RC circuit ``tau dU/dt = -U + R I`` with ``tau = R C``; snnTorch
``Lapicque``)::

    V[t] = (1 - dt / (R C)) * U[t-1] + I[t] * dt / C
    U[t] = V[t] - R[t] * U_thr   (subtract)      U[t] = (1 - R[t]) * V[t]   (zero)

``synaptic`` (second order, current based; snnTorch ``Synaptic``)::

    J[t] = alpha * J[t-1] + I[t]
    V[t] = beta * U[t-1] + J[t]
    U[t] = V[t] - R[t] * U_thr   (subtract)      U[t] = (1 - R[t]) * V[t]   (zero)

Note the zero reset: ``lif`` clears only the decayed membrane and keeps this step's input (as
snnTorch ``Leaky`` does), the other two clear everything (as snnTorch's ``Lapicque`` and
``Synaptic`` do).

``beta = exp(-dt / tau)`` (``beta_from_tau``). For ``lapicque`` without ``R`` and ``C``, ``R = 1``
and ``C = dt / ln(1 / beta)`` so that ``tau = RC`` is the same time constant as the LIF's; the
Euler step then decays by ``1 - dt / tau`` rather than ``exp(-dt / tau)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.errors import ConfigError

MODELS = ("lif", "lapicque", "synaptic")
RESETS = ("subtract", "zero", "none")
INPUTS = ("step", "pulses", "random", "drawn")


@dataclass(frozen=True)
class SimResult:
    """One simulation, time on axis 0: ``[T]`` for one neuron, ``[T, N]`` for a population.

    Attributes
    ----------
    input : the stimulus ``X`` as given (float64)
    current : the weighted input ``I = W * X``
    membrane : ``U[t]`` after each step (before the next step's reset)
    spikes : ``S[t]`` in {0, 1}
    threshold : ``U_thr``
    synaptic : synaptic current ``J[t]`` (``synaptic`` model only, else ``None``)
    model, reset, beta, dt : the settings used (``beta`` is the membrane decay per step)
    """

    input: np.ndarray
    current: np.ndarray
    membrane: np.ndarray
    spikes: np.ndarray
    threshold: float
    synaptic: np.ndarray | None = None
    model: str = "lif"
    reset: str = "subtract"
    beta: float = 0.9
    dt: float = 1.0
    params: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return int(self.membrane.shape[0])

    @property
    def time(self) -> np.ndarray:
        """Time of each step in units of ``dt`` (``t * dt``)."""
        return np.arange(self.steps) * self.dt

    @property
    def spike_count(self) -> np.ndarray | int:
        """Spikes per neuron (an int for one neuron)."""
        count = self.spikes.sum(axis=0)
        return int(count) if np.ndim(count) == 0 else count.astype(np.int64)

    @property
    def firing_rate(self) -> np.ndarray | float:
        """Spikes per step, per neuron."""
        rate = self.spikes.mean(axis=0)
        return float(rate) if np.ndim(rate) == 0 else rate


def beta_from_tau(tau: float, dt: float = 1.0) -> float:
    """Membrane decay per step, ``exp(-dt / tau)``."""
    if tau <= 0 or dt <= 0:
        raise ConfigError(f"tau ({tau}) and dt ({dt}) must both be positive")
    return math.exp(-dt / tau)


def tau_from_beta(beta: float, dt: float = 1.0) -> float:
    """Time constant for a decay ``beta`` per step, ``-dt / ln(beta)``."""
    if not 0 < beta < 1:
        raise ConfigError(f"beta ({beta}) must lie strictly between 0 and 1 to have a tau")
    return -dt / math.log(beta)


def _check(model: str, reset: str, threshold) -> None:
    if model not in MODELS:
        raise ConfigError(f"neuron model: {model!r} is unknown; choose one of {', '.join(MODELS)}")
    if reset not in RESETS:
        raise ConfigError(f"reset: {reset!r} is unknown; choose one of {', '.join(RESETS)}")
    if np.any(np.asarray(threshold) <= 0):
        raise ConfigError(f"threshold ({threshold}) must be positive")


def simulate(
    x,
    *,
    model: str = "lif",
    beta: float | None = None,
    tau: float | None = None,
    dt: float = 1.0,
    threshold: float = 1.0,
    weight: float = 1.0,
    reset: str = "subtract",
    alpha: float = 0.8,
    resistance: float | None = None,
    capacitance: float | None = None,
    mem0: float | np.ndarray = 0.0,
) -> SimResult:
    """Simulate one neuron (``x`` shaped ``[T]``) or a population (``[T, N]``).

    Parameters
    ----------
    x : array ``[T]`` or ``[T, N]``
        Stimulus ``X[t]``; the current is ``weight * x``.
    model : "lif", "lapicque" or "synaptic"
    beta, tau, dt : membrane decay per step; give ``beta`` directly or ``tau`` (and ``dt``,
        ``beta = exp(-dt / tau)``). Default ``beta = 0.9``.
    threshold, weight : ``U_thr`` and ``W`` (scalars or arrays broadcastable to ``x[0]``)
    reset : "subtract", "zero" or "none"
    alpha : synaptic current decay per step (``synaptic`` only)
    resistance, capacitance : ``R`` and ``C`` (``lapicque`` only; see the module docstring)
    mem0 : membrane potential before the first step
    """
    _check(model, reset, threshold)
    if beta is None:
        beta = 0.9 if tau is None else beta_from_tau(tau, dt)
    if not (0.0 <= float(np.min(beta)) and float(np.max(beta)) <= 1.0):
        raise ConfigError(f"beta ({beta}) must lie between 0 and 1")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[0] == 0:
        raise ConfigError(f"input must be shaped [T] or [T, N] with T > 0, got {x.shape}")
    cur = np.asarray(weight, dtype=np.float64) * x
    thr = np.asarray(threshold, dtype=np.float64)
    params: dict = {"threshold": threshold, "weight": weight}
    decay = beta
    gain = 1.0
    if model == "lapicque":
        r, c = _lapicque_rc(beta, dt, resistance, capacitance)
        decay, gain = 1.0 - dt / (r * c), dt / c
        params.update(resistance=r, capacitance=c)
    elif model == "synaptic":
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"alpha ({alpha}) must lie between 0 and 1")
        params["alpha"] = alpha

    mem = np.broadcast_to(np.asarray(mem0, dtype=np.float64), cur.shape[1:]).copy()
    syn = np.zeros(cur.shape[1:])
    mem_rec = np.empty_like(cur)
    syn_rec = np.empty_like(cur) if model == "synaptic" else None
    for t in range(cur.shape[0]):
        r_t = (mem >= thr).astype(np.float64)
        if model == "lif":
            if reset == "zero":
                mem = decay * (1.0 - r_t) * mem + cur[t]
            else:
                mem = decay * mem + cur[t]
        elif model == "lapicque":
            mem = decay * mem + gain * cur[t]
        else:
            syn = alpha * syn + cur[t]
            syn_rec[t] = syn
            mem = decay * mem + syn
        if reset == "subtract":
            mem = mem - r_t * thr
        elif reset == "zero" and model != "lif":
            mem = (1.0 - r_t) * mem
        mem_rec[t] = mem
    spikes = (mem_rec >= thr).astype(np.float64)
    return SimResult(
        input=x,
        current=cur,
        membrane=mem_rec,
        spikes=spikes,
        threshold=float(np.max(thr)) if thr.ndim else float(thr),
        synaptic=syn_rec,
        model=model,
        reset=reset,
        beta=float(np.mean(beta)),
        dt=float(dt),
        params=params,
    )


def _lapicque_rc(beta, dt, resistance, capacitance) -> tuple[float, float]:
    """``R`` and ``C`` as snnTorch's ``Lapicque`` infers them from whichever are given."""
    if resistance is not None and capacitance is not None:
        r, c = float(resistance), float(capacitance)
    else:
        if not 0 < float(beta) < 1:
            raise ConfigError(f"lapicque: beta ({beta}) must lie strictly between 0 and 1")
        tau = tau_from_beta(float(beta), dt)
        if resistance is not None:
            r = float(resistance)
            c = tau / r
        elif capacitance is not None:
            c = float(capacitance)
            r = tau / c
        else:
            r, c = 1.0, tau
    if r <= 0 or c <= 0:
        raise ConfigError(f"lapicque: R ({r}) and C ({c}) must be positive")
    return r, c


# ----- stimuli ---------------------------------------------------------------------------------


def step_current(steps: int = 200, amplitude: float = 1.0, start: int = 10, stop=None):
    """``amplitude`` from step ``start`` up to (not including) ``stop`` (the end when None)."""
    x = np.zeros(int(steps))
    x[int(start) : None if stop is None else int(stop)] = amplitude
    return x


def pulse_train(
    steps: int = 200, amplitude: float = 1.0, period: int = 20, width: int = 5, start: int = 10
):
    """Rectangular pulses ``width`` steps long every ``period`` steps from ``start``."""
    if period < 1 or width < 0:
        raise ConfigError(f"pulse train: period ({period}) must be >= 1 and width ({width}) >= 0")
    t = np.arange(int(steps)) - int(start)
    return np.where((t >= 0) & (t % int(period) < int(width)), float(amplitude), 0.0)


def random_spike_train(
    steps: int = 200, delay: int = 10, percent: int = 80, seed: int = 0, n: int | None = None
):
    """The report's Fig. 13 input: ``delay`` zeros, then ``(randint(0, 100) > percent)``.

    With ``seed`` this equals ``torch.manual_seed(seed)`` followed by the report's
    ``torch.cat((torch.zeros(10), (torch.randint(0, 100, (190,)) > 80).float()), 0)``.
    ``n`` gives ``n`` independent trains, shaped ``[steps, n]``.
    """
    import torch

    delay = max(0, min(int(delay), int(steps)))
    gen = torch.Generator().manual_seed(int(seed))
    shape = (int(steps) - delay,) if n is None else (int(steps) - delay, int(n))
    tail = (torch.randint(0, 100, shape, generator=gen) > percent).double().numpy()
    head = np.zeros((delay,) + shape[1:])
    return np.concatenate([head, tail], axis=0)


def population_input(
    steps: int = 200, n: int = 100, p_low: float = 0.02, p_high: float = 0.4, seed: int = 0
):
    """``[steps, n]`` Bernoulli spike trains whose probability per step grows linearly from
    ``p_low`` (neuron 0) to ``p_high`` (neuron n-1), so firing rates spread out."""
    rng = np.random.default_rng(int(seed))
    p = np.linspace(p_low, p_high, int(n))
    return (rng.random((int(steps), int(n))) < p).astype(np.float64)


def drawn_current(times, values, steps: int) -> np.ndarray:
    """A current drawn by hand: points ``(time, value)`` linearly interpolated onto every step.

    Before the first point and after the last the current holds the end values; no points
    gives zeros. Repeated times keep the last value drawn there.
    """
    times = np.asarray(times, dtype=np.float64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    if times.size != values.size:
        raise ConfigError(f"drawn current: {times.size} times but {values.size} values")
    if times.size == 0:
        return np.zeros(int(steps))
    order = np.argsort(times, kind="stable")
    t, v = times[order], values[order]
    # keep the last value drawn at each time (the user drew over it)
    keep = np.append(t[1:] != t[:-1], True)
    return np.interp(np.arange(int(steps), dtype=np.float64), t[keep], v[keep])


def make_input(kind: str, steps: int = 200, *, amplitude: float = 1.0, seed: int = 0, **kw):
    """One stimulus by name: "step", "pulses", "random" (the report's Fig. 13) or "drawn"
    (``times=``, ``values=``)."""
    if kind == "step":
        return step_current(steps, amplitude, kw.get("start", 10), kw.get("stop"))
    if kind == "pulses":
        return pulse_train(
            steps, amplitude, kw.get("period", 20), kw.get("width", 5), kw.get("start", 10)
        )
    if kind == "random":
        return amplitude * random_spike_train(
            steps, kw.get("delay", 10), kw.get("percent", 80), seed
        )
    if kind == "drawn":
        return drawn_current(kw.get("times", ()), kw.get("values", ()), steps)
    raise ConfigError(f"input: {kind!r} is unknown; choose one of {', '.join(INPUTS)}")
