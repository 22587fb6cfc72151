"""Multi-step leaky integrate-and-fire layer in torch (time-first ``[T, B, ...]``).

The update is the report's eq. 2-3, with snnTorch ``Leaky``'s exact ordering::

    R[t]   = H(U[t-1] - U_thr)                       (reset from the previous step, no gradient)
    U[t]   = beta * U[t-1] + I[t] - R[t] * U_thr      reset="subtract"
    U[t]   = beta * (1 - R[t]) * U[t-1] + I[t]       reset="zero"
    S[t]   = H(U[t] - U_thr)                          (surrogate gradient in the backward pass)

with ``U[-1] = 0`` unless ``mem0`` is given. ``I`` is the input current (already weighted).
"""

from __future__ import annotations

import torch

from engine.errors import ConfigError
from engine.surrogate import spike

RESETS = ("subtract", "zero", "none")


def lif_multistep(
    cur: torch.Tensor,
    beta: float | torch.Tensor = 0.9,
    threshold: float = 1.0,
    reset: str = "subtract",
    surrogate: str = "arctan",
    slope: float | None = None,
    mem0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a LIF population over all time steps.

    Parameters
    ----------
    cur : tensor ``[T, B, ...]``
        Input current at every step.
    beta : float or tensor broadcastable to ``cur[0]``
        Membrane decay per step, ``exp(-dt / tau)``.

    Returns
    -------
    spikes, membrane : tensors ``[T, B, ...]``
    """
    if reset not in RESETS:
        raise ConfigError(f"reset: {reset!r} is unknown; choose one of {', '.join(RESETS)}")
    mem = torch.zeros_like(cur[0]) if mem0 is None else mem0
    spk_rec, mem_rec = [], []
    for t in range(cur.shape[0]):
        r = (mem >= threshold).to(cur.dtype).detach()
        if reset == "subtract":
            mem = beta * mem + cur[t] - r * threshold
        elif reset == "zero":
            mem = beta * (1.0 - r) * mem + cur[t]
        else:
            mem = beta * mem + cur[t]
        spk_rec.append(spike(mem - threshold, surrogate, slope))
        mem_rec.append(mem)
    return torch.stack(spk_rec), torch.stack(mem_rec)
