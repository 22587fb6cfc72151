"""Running NIR graphs to check an export: a small step-by-step simulator, snnTorch's own import,
and reading NIR files. The mapping and its discretisations are in :mod:`engine.export.nir`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ExportError
from engine.export.nir import DEFAULT_DT, DISCRETISATIONS, nir_module


@dataclass(frozen=True)
class NirRun:
    """What :func:`simulate_nir` returns: the output node's values and every neuron node's spikes.

    ``output`` is ``[T, B, ...]``; ``spikes`` maps node names to ``[T, B, ...]`` 0/1 tensors.
    """

    output: torch.Tensor
    spikes: dict


_STATELESS = ("Input", "Output", "Affine", "Linear", "Conv2d", "Flatten", "AvgPool2d")
_STATELESS += ("SumPool2d", "Scale", "Threshold")
_NEURONS = ("LIF", "IF", "LI", "I")


def _topological(graph) -> list[str]:
    incoming = {k: 0 for k in graph.nodes}
    for a, b in graph.edges:
        if a not in graph.nodes or b not in graph.nodes:
            raise ExportError(f"NIR graph: edge ({a}, {b}) names a node that is absent")
        incoming[b] += 1
    ready = [k for k, n in incoming.items() if n == 0]
    order = []
    while ready:
        k = ready.pop(0)
        order.append(k)
        for a, b in graph.edges:
            if a == k:
                incoming[b] -= 1
                if incoming[b] == 0:
                    ready.append(b)
    if len(order) != len(graph.nodes):
        raise ExportError("NIR graph has a cycle; this simulator runs feed-forward graphs")
    return order


def _meta(graph, key, default):
    value = (getattr(graph, "metadata", None) or {}).get(key, default)
    return value.decode() if isinstance(value, bytes) else value


class _Neuron:
    """State and per-step coefficients of one NIR neuron node (``v = a v + g I + k``)."""

    def __init__(self, node, dt: float, discretisation: str, dtype, device):
        kind = type(node).__name__

        def arr(v):
            return np.asarray(v, dtype=np.float64)

        if kind in ("LIF", "LI"):
            tau, r, leak = arr(node.tau), arr(node.r), arr(node.v_leak)
            if discretisation == "exact":
                a = np.exp(-dt / tau)
                g, k = (1.0 - a) * r, (1.0 - a) * leak
            else:
                step = dt / tau
                a, g, k = 1.0 - step, step * r, step * leak
        else:  # IF, I: dv/dt = r I
            r = arr(node.r)
            a, g, k = np.ones_like(r), r * dt, np.zeros_like(r)

        # coefficients of exactly 1 and 0 are skipped: then the update is the model's own
        # ``beta * v + I`` and rounds the same way
        def tensor(v):
            return torch.as_tensor(v, dtype=dtype, device=device)

        self.a, self.g, self.k = tensor(a), tensor(g), tensor(k)
        self.unit_gain = bool(torch.all(self.g == 1))
        self.no_leak_v = bool(torch.all(self.k == 0))
        self.fires = kind in ("LIF", "IF")
        if self.fires:
            self.thr = tensor(arr(node.v_threshold))
            self.v_reset = tensor(arr(node.v_reset))
        self.v = None

    def step(self, cur: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(cur) if self.v is None else self.v
        v = v * self.a + (cur if self.unit_gain else cur * self.g)
        if not self.no_leak_v:
            v = v + self.k
        if not self.fires:
            self.v = v
            return v
        z = v > self.thr
        self.v = torch.where(z, self.v_reset.expand_as(v), v)
        return z.to(cur.dtype)


def _pair(v) -> tuple[int, int]:
    v = np.asarray(v).reshape(-1)
    return (int(v[0]), int(v[-1]))


def _stateless(node, x: torch.Tensor, params: dict) -> torch.Tensor:
    kind = type(node).__name__
    if kind in ("Input", "Output"):
        return x
    if kind in ("Affine", "Linear"):
        return F.linear(x, params["weight"], params.get("bias"))
    if kind == "Conv2d":
        pad = node.padding
        pad = pad if isinstance(pad, str) else _pair(pad)
        return F.conv2d(
            x,
            params["weight"],
            params["bias"],
            _pair(node.stride),
            pad,
            _pair(node.dilation),
            int(node.groups),
        )
    if kind == "Flatten":
        start, end = int(node.start_dim), int(node.end_dim)
        return x.flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)
    if kind in ("AvgPool2d", "SumPool2d"):
        k, s, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
        out = F.avg_pool2d(x, k, s, p)
        return out * (k[0] * k[1]) if kind == "SumPool2d" else out
    if kind == "Scale":
        return x * params["scale"]
    if kind == "Threshold":
        return (x > params["threshold"]).to(x.dtype)
    raise ExportError(f"NIR node type {kind} is not supported by this simulator")


def simulate_nir(
    graph,
    x_seq: torch.Tensor,
    *,
    dt: float | None = None,
    discretisation: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> NirRun:
    """Run a feed-forward NIR graph one time step at a time.

    Parameters
    ----------
    graph : nir.NIRGraph
        One input node, one output node; nodes of the types in ``_STATELESS`` and ``_NEURONS``.
        Several edges into a node add up.
    x_seq : tensor ``[T, B, *input_shape]``
        The graph's input at every step (the scaled input, or an encoder's spikes).
    dt, discretisation : the step in seconds and how to integrate the ODEs (default: the
        graph's metadata, else ``DEFAULT_DT`` and "exact"; see the module docstring).

    Neurons start at ``v = 0``; a firing neuron emits 1 in the step its ``v`` exceeds
    ``v_threshold`` and is set to ``v_reset`` in that step.
    """
    dt = float(dt if dt is not None else _meta(graph, "dt", DEFAULT_DT))
    method = discretisation or _meta(graph, "discretisation", "exact")
    if method not in DISCRETISATIONS:
        raise ExportError(f"discretisation: {method!r}; choose exact or euler")
    order = _topological(graph)
    inputs = [k for k in order if type(graph.nodes[k]).__name__ == "Input"]
    outputs = [k for k in order if type(graph.nodes[k]).__name__ == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ExportError("NIR graph: this simulator needs exactly one input and one output")
    device = x_seq.device
    preds = {k: [a for a, b in graph.edges if b == k] for k in order}
    neurons, params = {}, {}
    for k in order:
        node = graph.nodes[k]
        kind = type(node).__name__
        if kind in _NEURONS:
            neurons[k] = _Neuron(node, dt, method, dtype, device)
        elif kind in _STATELESS:
            params[k] = {
                name: torch.as_tensor(np.asarray(getattr(node, name)), dtype=dtype, device=device)
                for name in ("weight", "bias", "scale", "threshold")
                if getattr(node, name, None) is not None
            }
        else:
            raise ExportError(f"NIR node {k}: type {kind} is not supported by this simulator")
    out_rec, spk_rec = [], {k: [] for k, n in neurons.items() if n.fires}
    x_seq = x_seq.to(dtype)
    with torch.no_grad():
        for t in range(x_seq.shape[0]):
            values: dict[str, torch.Tensor] = {}
            for k in order:
                if k == inputs[0]:
                    x = x_seq[t]
                else:
                    srcs = [values[a] for a in preds[k]]
                    x = srcs[0] if len(srcs) == 1 else torch.stack(srcs).sum(0)
                if k in neurons:
                    values[k] = neurons[k].step(x)
                    if k in spk_rec:
                        spk_rec[k].append(values[k])
                else:
                    values[k] = _stateless(graph.nodes[k], x, params[k])
            out_rec.append(values[outputs[0]])
    return NirRun(torch.stack(out_rec), {k: torch.stack(v) for k, v in spk_rec.items()})


def read_nir(path):
    """``nir.read`` with a one-line error for a file that is not NIR."""
    nir = nir_module()
    try:
        return nir.read(str(path))
    except (OSError, KeyError, ValueError) as exc:
        raise ExportError(f"{path}: not a readable NIR file ({exc})") from None


def snntorch_run(graph, x_seq: torch.Tensor) -> torch.Tensor:
    """The graph's output ``[T, B, N]`` through snnTorch's own NIR import (needs nirtorch).

    snnTorch's importer turns NIR's ``Flatten(start_dim=0)`` (NIR shapes have no batch axis)
    into ``nn.Flatten(0, -1)``, which would flatten the batch too; those modules get
    ``start_dim=1`` so a whole batch runs at once. snnTorch integrates the LIF ODE with forward
    Euler at ``dt = 1e-4`` and prints notes to stdout (kept off ours).
    """
    import contextlib
    import io

    try:
        import snntorch.utils
        from snntorch.import_nir import import_from_nir
    except ImportError as exc:
        raise ExportError(f"snnTorch's NIR import needs nirtorch ({exc})") from None
    with contextlib.redirect_stdout(io.StringIO()):
        net = import_from_nir(graph)
        for mod in net.modules():
            if isinstance(mod, nn.Flatten) and mod.start_dim == 0:
                mod.start_dim = 1
        snntorch.utils.reset(net)
        steps = []
        with torch.no_grad():
            for t in range(x_seq.shape[0]):
                out = net(x_seq[t])
                steps.append(out[0] if isinstance(out, tuple) else out)
    return torch.stack(steps)
