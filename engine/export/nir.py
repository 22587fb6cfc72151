"""NIR export of the spiking models (:mod:`engine.export.nir_run` runs the graphs to check them).

NIR (the Neuromorphic Intermediate Representation) describes neurons in continuous time. Its LIF
node is ``tau dv/dt = (v_leak - v) + r I``, it fires when ``v > v_threshold`` and then sets
``v = v_reset``. Our LIF layers are discrete (one step per input frame)::

    U[t] = beta * U[t-1] + I[t]          S[t] = (U[t] >= threshold)

Mapping (``v_leak = 0``, ``v_reset = 0``, ``v_threshold = threshold``, step ``dt`` seconds):

- ``discretisation="exact"`` (default): the ODE solved exactly over one step with the input held
  constant gives ``v[t] = e^(-dt/tau) v[t-1] + (1 - e^(-dt/tau)) r I[t]``, so
  ``tau = -dt / ln(beta)`` (``beta = exp(-dt / tau)``) and ``r = 1 / (1 - beta)``.
- ``discretisation="euler"``: forward Euler, ``v[t] = v + dt/tau ((v_leak - v) + r I)``, so
  ``tau = dt / (1 - beta)`` and ``r = 1 / (1 - beta)``; this is what snnTorch, Norse and
  others use when they import NIR (snnTorch with ``dt = 1e-4``), so choose it for them.
- ``beta = 1`` (no leak) becomes an ``IF`` node with ``r = 1 / dt``.

Both give ``v[t] = beta v[t-1] + I[t]`` on their own discretisation. ``dt`` (default 1e-4 s,
snnTorch's) only scales ``tau`` and ``r``; the graph's metadata records it with the
discretisation, the number of time steps, the encoder and the input scaling.

Reset: NIR resets to ``v_reset`` in the step that fires. That equals our ``reset="zero"``
(which clears the membrane before the next step's input), so models trained with
``reset = "zero"`` export exactly. ``reset="subtract"`` (the default) has no NIR equivalent:
export refuses it unless ``reset_as_zero=True`` (the check then measures how far spikes move).
Threshold: NIR fires on ``v > v_threshold``, we fire on ``>=``; they differ only when a
membrane lands exactly on the threshold.

Layers: convolution and linear layers carry their batch norm folded into their weights
(``W * gamma / sqrt(var + eps)``, ``(b - mean) * gamma / sqrt(var + eps) + beta``); average
pooling, flatten and the LIF populations map one to one. NIR has no max pooling (train
``csnn_avg``). The input scaling (``InputNorm``) and the spike encoder stay outside the graph:
the graph's input is the scaled input (direct encoding: the same current at every step) or
the encoder's spikes; the metadata holds ``input_shift`` and ``input_scale``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from engine.errors import ExportError

DISCRETISATIONS = ("exact", "euler")
DEFAULT_DT = 1e-4
GENERATOR = "snn-explorer"


# ----------------------------------------------------------------------------- model -> NIR
def _fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.Module, name: str):
    """Weight and bias of a layer followed by ``bn`` (eval mode), as float32 NumPy arrays."""
    w = weight.detach().double()
    b = bias.detach().double() if bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    if isinstance(bn, nn.Identity):
        pass
    elif isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if bn.running_mean is None or bn.running_var is None:
            raise ExportError(f"layer {name}: batch norm without running statistics")
        scale = torch.rsqrt(bn.running_var.double() + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.detach().double()
        shift = -bn.running_mean.double() * scale
        if bn.bias is not None:
            shift = shift + bn.bias.detach().double()
        w = w * scale.view(-1, *([1] * (w.dim() - 1)))
        b = b * scale + shift
    else:
        raise ExportError(f"layer {name} ({type(bn).__name__}): NIR cannot express it")
    return w.float().numpy(), b.float().numpy()


def _lif_node(lif: nn.Module, name: str, shape, dt: float, discretisation: str, reset_as_zero):
    """The NIR neuron node of one of our LIF layers (see the module docstring)."""
    if lif.reset == "subtract" and not reset_as_zero:
        raise ExportError(
            f"layer {name}: reset by subtraction has no NIR equivalent (NIR resets to "
            'v_reset); train with reset = "zero", or export with --reset-as-zero'
        )
    if lif.reset == "none":
        raise ExportError(f"layer {name}: a LIF layer without reset has no NIR equivalent")
    beta = float(lif.beta_value())
    shape = tuple(int(s) for s in shape)
    thr = np.full(shape, float(lif.threshold))
    zeros = np.zeros(shape)
    meta = {"beta": beta, "reset": lif.reset}
    if beta >= 1.0:
        return nir_module().IF(
            r=np.full(shape, 1.0 / dt), v_threshold=thr, v_reset=zeros, metadata=meta
        )
    if discretisation == "exact":
        if beta <= 0.0:
            raise ExportError(
                f"layer {name}: beta 0 has no finite time constant in exact mode; export "
                "with discretisation euler"
            )
        tau = -dt / math.log(beta)
    else:
        tau = dt / (1.0 - beta)
    return nir_module().LIF(
        tau=np.full(shape, tau),
        r=np.full(shape, 1.0 / (1.0 - beta)),
        v_leak=zeros.copy(),
        v_threshold=thr,
        v_reset=zeros,
        metadata=meta,
    )


def nir_module():
    """The ``nir`` package, or a one-line error saying how to install it."""
    try:
        import nir
    except ImportError:
        raise ExportError(
            "NIR export needs the nir package: pip install 'snn-explorer[export]'"
        ) from None
    return nir


def _conv_node(conv: nn.Conv2d, bn: nn.Module, name: str, in_hw):
    if conv.padding_mode != "zeros":
        raise ExportError(f"layer {name}: padding mode {conv.padding_mode!r} is not in NIR")
    w, b = _fold_bn(conv.weight, conv.bias, bn, name)
    padding = conv.padding if isinstance(conv.padding, str) else tuple(conv.padding)
    return nir_module().Conv2d(
        input_shape=tuple(int(v) for v in in_hw),
        weight=w,
        stride=tuple(conv.stride),
        padding=padding,
        dilation=tuple(conv.dilation),
        groups=int(conv.groups),
        bias=b,
    )


def _pool_node(pool: nn.Module, name: str):
    """AvgPool2d maps to NIR; max pooling and other pools are refused naming the layer."""
    if isinstance(pool, nn.MaxPool2d):
        raise ExportError(
            f"layer {name} (MaxPool2d): NIR has no max pooling; train the csnn_avg model "
            '(or pooling = "avg") to export to NIR'
        )
    if not isinstance(pool, nn.AvgPool2d):
        raise ExportError(f"layer {name} ({type(pool).__name__}): NIR cannot express it")
    if pool.ceil_mode or pool.divisor_override:
        raise ExportError(f"layer {name}: ceil_mode/divisor_override pooling is not in NIR")

    def pair(v):
        return np.array(v if isinstance(v, (tuple, list)) else (v, v), dtype=np.int64)

    stride = pool.stride if pool.stride is not None else pool.kernel_size
    return nir_module().AvgPool2d(
        kernel_size=pair(pool.kernel_size), stride=pair(stride), padding=pair(pool.padding)
    )


def _affine_node(fc: nn.Linear, bn: nn.Module, name: str):
    w, b = _fold_bn(fc.weight, fc.bias, bn, name)
    return nir_module().Affine(weight=w, bias=b)


def _readout_norm(model: nn.Module) -> nn.Module:
    """The batch norm on the output layer's currents (``readout_norm``), if the model has one."""
    return getattr(model, "bn_out", None) or nn.Identity()


def _check_all_layers_used(model: nn.Module, used: set[str]) -> None:
    """Refuse a model with a weighted layer the graph above left out (a newer model option)."""
    for name, mod in model.named_modules():
        if not name or name in used:
            continue
        if any(True for _ in mod.parameters(recurse=False)) or any(
            True for _ in mod.buffers(recurse=False)
        ):
            raise ExportError(
                f"layer {name} ({type(mod).__name__}): the NIR export does not know this "
                "layer; export the model as torchscript"
            )


def _chain(names: Iterable[str]) -> list[tuple[str, str]]:
    names = list(names)
    return list(zip(names[:-1], names[1:]))


def model_to_nir(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    dt: float = DEFAULT_DT,
    discretisation: str = "exact",
    reset_as_zero: bool = False,
    metadata: dict | None = None,
):
    """The NIR graph of a trained spiking model built for inputs ``input_shape`` ``(C, H, W)``.

    ``fc_snn`` and ``csnn_avg`` (any CSNN with average pooling) trained with ``reset="zero"``
    export exactly; ``metadata`` is added to the graph's (JSON-encoded where not a number,
    string or array).

    Raises
    ------
    ExportError
        One line naming the layer NIR cannot express (max pooling, reset by subtraction...).
    """
    from engine.models.registry import CSNN, FCSNN, SCNN, SRNN

    if discretisation not in DISCRETISATIONS:
        raise ExportError(
            f"discretisation: {discretisation!r}; choose one of {', '.join(DISCRETISATIONS)}"
        )
    if not (dt > 0 and math.isfinite(dt)):
        raise ExportError(f"dt: {dt} must be a positive number of seconds")
    nir = nir_module()
    model = model.eval()
    norm = model.input_norm
    shape = tuple(int(v) for v in input_shape)
    nodes: dict = {"input": nir.Input(input_type={"input": np.array(shape)})}
    order = ["input"]
    lif_args = {"dt": dt, "discretisation": discretisation, "reset_as_zero": reset_as_zero}
    edges = None
    if isinstance(model, SRNN):
        raise ExportError(
            "model srnn: NIR has no adaptive threshold (its ALIF layers raise their threshold "
            "after each spike), so srnn cannot be exported to NIR"
        )
    if isinstance(model, SCNN):
        nodes, edges, used = _scnn_nodes(model, shape, nodes, lif_args)
        order = list(nodes)
    elif isinstance(model, CSNN):
        x = torch.zeros(1, *shape)
        for i, (conv, bn, pool, lif) in enumerate(
            zip(model.convs, model.bns, model.pools, model.lifs)
        ):
            nodes[f"convs.{i}"] = _conv_node(conv, bn, f"convs.{i}", x.shape[2:])
            order.append(f"convs.{i}")
            with torch.no_grad():
                x = pool(bn(conv(x)))
            if not isinstance(pool, nn.Identity):
                nodes[f"pools.{i}"] = _pool_node(pool, f"pools.{i}")
                order.append(f"pools.{i}")
            nodes[f"lifs.{i}"] = _lif_node(lif, f"lifs.{i}", x.shape[1:], **lif_args)
            order.append(f"lifs.{i}")
        nodes["flatten"] = nir.Flatten(input_type={"input": np.array(x.shape[1:])}, start_dim=0)
        order.append("flatten")
        if model.hidden:
            nodes["fc_hidden"] = _affine_node(model.fc_hidden, model.bn_hidden, "fc_hidden")
            nodes["lif_hidden"] = _lif_node(
                model.lif_hidden, "lif_hidden", (model.hidden,), **lif_args
            )
            order += ["fc_hidden", "lif_hidden"]
        nodes["fc"] = _affine_node(model.fc, _readout_norm(model), "fc")
        nodes["out"] = _lif_node(model.out, "out", (model.fc.out_features,), **lif_args)
        order += ["fc", "out"]
        used = {
            f"{k}.{i}" for k in ("convs", "bns", "pools", "lifs") for i in range(len(model.convs))
        }
        used |= {"fc_hidden", "bn_hidden", "lif_hidden", "fc", "bn_out", "out"}
    elif isinstance(model, FCSNN):
        nodes["flatten"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)
        nodes["fc1"] = _affine_node(model.fc1, model.bn1, "fc1")
        nodes["lif1"] = _lif_node(model.lif1, "lif1", (model.fc1.out_features,), **lif_args)
        nodes["fc2"] = _affine_node(model.fc2, _readout_norm(model), "fc2")
        nodes["out"] = _lif_node(model.out, "out", (model.fc2.out_features,), **lif_args)
        order += ["flatten", "fc1", "lif1", "fc2", "out"]
        used = {"fc1", "bn1", "lif1", "fc2", "bn_out", "out"}
    else:
        name = type(model).__name__
        raise ExportError(
            f"model {name} is not a spiking model NIR can describe; NIR export takes "
            "fc_snn, csnn_avg and scnn_gap (use onnx or torchscript for the others)"
        )
    _check_all_layers_used(model, used | {"input_norm"})
    n_out = int(nodes[order[-1]].output_type["output"][0])
    nodes["output"] = nir.Output(output_type={"output": np.array([n_out])})
    order.append("output")
    edges = _chain(order) if edges is None else [*edges, (order[-2], "output")]
    meta = {
        "generator": GENERATOR,
        "dt": float(dt),
        "discretisation": discretisation,
        "threshold_rule": "snn-explorer fires on v >= v_threshold (NIR: v > v_threshold)",
        "input_norm": norm.mode,
        "input_shift": norm.shift.detach().double().numpy()[0],
        "input_scale": norm.scale.detach().double().numpy()[0],
    }
    meta.update(metadata or {})
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_h5_safe(meta))


def _scnn_nodes(model, shape, nodes, lif_args):
    """Nodes and edges of ``scnn_gap``: a residual block's input spikes enter its LIF node by a
    second edge (NIR adds the inputs of a node); the global average is an AvgPool2d over the
    whole last feature map (so the graph is for inputs of ``shape`` only)."""
    nir = nir_module()
    edges, prev, x = [], "input", torch.zeros(1, *shape)
    blocks = zip(model.convs, model.bns, model.pools, model.neurons, model.shortcut)
    for i, (conv, bn, pool, lif, short) in enumerate(blocks):
        nodes[f"convs.{i}"] = _conv_node(conv, bn, f"convs.{i}", x.shape[2:])
        edges.append((prev, f"convs.{i}"))
        last = f"convs.{i}"
        with torch.no_grad():
            x = pool(bn(conv(x)))
        if not isinstance(pool, nn.Identity):
            nodes[f"pools.{i}"] = _pool_node(pool, f"pools.{i}")
            edges.append((last, f"pools.{i}"))
            last = f"pools.{i}"
        nodes[f"lifs.{i}"] = _lif_node(lif, f"lifs.{i}", x.shape[1:], **lif_args)
        edges.append((last, f"lifs.{i}"))
        if short:
            edges.append((prev, f"lifs.{i}"))
        prev = f"lifs.{i}"
    hw = np.array(x.shape[2:], dtype=np.int64)
    nodes["gap"] = nir.AvgPool2d(kernel_size=hw, stride=hw, padding=np.zeros(2, np.int64))
    nodes["flatten"] = nir.Flatten(input_type={"input": np.array([x.shape[1], 1, 1])}, start_dim=0)
    nodes["fc"] = _affine_node(model.fc, _readout_norm(model), "fc")
    nodes["out"] = _lif_node(model.out, "out", (model.fc.out_features,), **lif_args)
    edges += [(prev, "gap"), ("gap", "flatten"), ("flatten", "fc"), ("fc", "out")]
    n = len(model.convs)
    used = {f"{k}.{i}" for k in ("convs", "bns", "pools", "neurons") for i in range(n)}
    return nodes, edges, used | {"gap", "fc", "bn_out", "out"}


def _h5_safe(meta: dict) -> dict:
    """Metadata values NIR's HDF5 writer can store: numbers, strings and arrays."""
    out = {}
    for k, v in meta.items():
        if v is None:
            continue
        if isinstance(v, (bool, np.bool_)):
            out[k] = int(v)
        elif isinstance(v, (int, float, str, np.ndarray, np.number)):
            out[k] = v
        else:
            out[k] = json.dumps(v)
    return out


# names of our layers in the graph, for comparing a model's record with a simulation
def layer_node_names(model: nn.Module) -> dict[str, str]:
    """``{record key: NIR node name}`` for every spiking layer of a model."""
    from engine.models.registry import CSNN, SCNN

    if isinstance(model, SCNN):
        names = {f"lif{i + 1}": f"lifs.{i}" for i in range(len(model.convs))}
        return {**names, "out": "out"}
    if isinstance(model, CSNN):
        names = {f"lif{i + 1}": f"lifs.{i}" for i in range(len(model.lifs))}
        if model.hidden:
            names["lif_hidden"] = "lif_hidden"
        names["out"] = "out"
        return names
    return {"lif1": "lif1", "out": "out"}
