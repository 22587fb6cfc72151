"""TorchScript (every model) and ONNX (the ANNs) export.

TorchScript of a spiking model is :class:`ScriptedSNN`: the model's stateless layers computed
the way the model computes them in evaluation (for the CSNN, :mod:`engine.neuro.spike_ops`' path:
batch norm folded into the convolution by the same function, the same chunks of samples in
channels-last layout, the readout's weight columns in the same order) and a scripted LIF time
loop doing the model's operations in the model's order, so its spikes and membranes are bit for
bit the model's. It takes either raw features ``[B, C, H, W]`` (scaled by
the stored input normalisation, then fed as the same current for ``steps`` steps: the "direct"
encoding) or an encoded sequence ``[T, B, C, H, W]`` used as it is, like the model; it returns
``(spikes, membrane)`` of the output layer, each ``[T, B, n_classes]``.

TorchScript of an ANN is ``torch.jit.script`` of the model (``torch.jit.trace`` where scripting
fails); ONNX is the legacy TorchScript-based exporter (it works offline, without onnxscript),
opset 17, with a dynamic batch axis. Both take raw features ``[B, C, H, W]`` (the input
normalisation is inside) and return logits ``[B, n_classes]``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ExportError
from engine.neuro.spike_modules import fold_batchnorm, pool_kind_of
from engine.neuro.spike_ops import TARGET_CHUNK_BYTES

ONNX_OPSET = 17
#: name of the JSON file stored inside a TorchScript archive (``torch.jit.load(...,
#: _extra_files={METADATA_FILE: ""})`` reads it back)
METADATA_FILE = "snn_explorer.json"

_RESET_ID = {"subtract": 0, "zero": 1, "none": 2}


class ScriptedLIF(nn.Module):
    """The LIF time loop of :mod:`engine.neuro.lif` in scriptable form (same operations, same order)."""

    def __init__(self, beta: float, threshold: float, reset: str):
        super().__init__()
        self.beta = float(beta)
        self.threshold = float(threshold)
        self.reset = _RESET_ID[reset]

    def forward(self, cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mem = torch.zeros_like(cur[0])
        r = torch.zeros_like(cur[0])
        spk_rec: list[torch.Tensor] = []
        mem_rec: list[torch.Tensor] = []
        for t in range(cur.shape[0]):
            mem = mem * self.beta
            if self.reset == 1:
                mem = mem * (1.0 - r)
            mem = mem + cur[t]
            if self.reset == 0:
                mem = mem - r * self.threshold
            r = (mem >= self.threshold).to(cur.dtype)
            spk_rec.append(r)
            mem_rec.append(mem)
        return torch.stack(spk_rec), torch.stack(mem_rec)


class ScriptedStage(nn.Module):
    """One stateless block (e.g. conv -> batch norm -> pool) followed by a LIF population."""

    def __init__(self, block: nn.Module, lif: ScriptedLIF, flatten: bool):
        super().__init__()
        self.block = block
        self.lif = lif
        self.flatten = flatten

    def forward(
        self, x: torch.Tensor, static: bool, steps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if static:
            if self.flatten:
                x = x.flatten(1)
            cur = self.block(x)
            cur = cur.unsqueeze(0).expand([steps] + list(cur.shape))
        else:
            if self.flatten:
                x = x.flatten(2)
            t, b = x.shape[0], x.shape[1]
            out = self.block(x.reshape([t * b] + list(x.shape[2:])))
            cur = out.reshape([t, b] + list(out.shape[1:]))
        return self.lif(cur)


class ScriptedConv(nn.Module):
    """``conv_block`` of :mod:`engine.neuro.spike_modules` in evaluation, in scriptable form."""

    def __init__(self, conv: nn.Conv2d, bn: nn.Module | None, pool: nn.Module | None):
        super().__init__()
        bn = None if isinstance(bn, nn.Identity) else bn
        pool = None if isinstance(pool, nn.Identity) else pool
        kind, size = pool_kind_of(pool)
        if kind is None or isinstance(conv.padding, str) or conv.padding_mode != "zeros":
            raise ExportError(f"convolution block {conv} / {pool}: no scripted twin for it")
        with torch.no_grad():
            weight, bias = conv.weight, conv.bias
            if bn is not None:
                weight, bias = fold_batchnorm(weight, bias, bn)
            if bias is None:
                bias = torch.zeros(weight.shape[0])
        self.register_buffer(
            "weight", weight.detach().contiguous(memory_format=torch.channels_last)
        )
        self.register_buffer("bias", bias.detach().clone())
        self.stride = list(conv.stride)
        self.padding = list(conv.padding)
        self.dilation = list(conv.dilation)
        self.groups = int(conv.groups)
        self.pool = {"none": 0, "max": 1, "avg": 2}[kind]
        self.k = int(size)
        self.chunk_bytes = int(TARGET_CHUNK_BYTES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        per_sample = self.weight.shape[0] * x.shape[2] * x.shape[3] * 4
        chunk = max(1, self.chunk_bytes // max(per_sample, 1))
        outs: list[torch.Tensor] = []
        lo = 0
        while lo < n:
            xk = x[lo : lo + chunk].contiguous(memory_format=torch.channels_last)
            y = F.conv2d(
                xk, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
            )
            if self.pool == 1:
                y = F.max_pool2d(y, self.k)
            elif self.pool == 2:
                y = F.avg_pool2d(y, self.k)
            outs.append(y)
            lo += chunk
        return torch.cat(outs)


class ScriptedSeqLinear(nn.Module):
    """``linear_seq`` of :mod:`engine.neuro.spike_readout` (then a batch norm) in scriptable form.

    A ``[T, B, C, H, W]`` input is flattened in (H, W, C) order with the weight's columns put in
    that order, as the model does with its channels-last spikes.
    """

    def __init__(self, fc: nn.Linear, bn: nn.Module | None, chw: tuple[int, int, int] | None):
        super().__init__()
        with torch.no_grad():
            weight = fc.weight
            if chw is not None:
                c, h, w = chw
                weight = weight.view(weight.shape[0], c, h, w).permute(0, 2, 3, 1)
                weight = weight.reshape(weight.shape[0], -1)
            bias = fc.bias if fc.bias is not None else torch.zeros(weight.shape[0])
        self.register_buffer("weight", weight.detach().contiguous())
        self.register_buffer("bias", bias.detach().clone())
        self.bn = nn.Identity() if bn is None else bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[0], x.shape[1]
        if x.dim() == 5:
            x = x.permute(0, 1, 3, 4, 2).reshape(t, b, -1)
        cur = F.linear(x, self.weight, self.bias)
        return self.bn(cur.reshape(t * b, -1))


class ScriptedLinearStage(nn.Module):
    """A :class:`ScriptedSeqLinear` on a spike sequence followed by a LIF population."""

    def __init__(self, block: ScriptedSeqLinear, lif: ScriptedLIF):
        super().__init__()
        self.block = block
        self.lif = lif

    def forward(
        self, x: torch.Tensor, static: bool, steps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        t, b = x.shape[0], x.shape[1]
        return self.lif(self.block(x).reshape(t, b, -1))


class ScriptedSNN(nn.Module):
    """A spiking model with its time loop, for ``torch.jit.script``; see the module docstring."""

    def __init__(self, input_norm: nn.Module, stages: list[ScriptedStage], steps: int, direct):
        super().__init__()
        self.input_norm = input_norm
        self.stages = nn.ModuleList(stages)
        self.steps = int(steps)
        self.direct = bool(direct)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        static = x.dim() == 4
        if static:
            if not self.direct:
                raise RuntimeError(
                    "this model was trained with a spike encoder: pass the encoded input "
                    "[T, B, C, H, W] (see snn_explorer.json)"
                )
            x = self.input_norm(x)
            steps = self.steps
        elif x.dim() == 5:
            steps = x.shape[0]
        else:
            raise RuntimeError("input must be [B, C, H, W] or [T, B, C, H, W]")
        spk = x
        mem = x
        for stage in self.stages:
            spk, mem = stage(x, static, steps)
            x = spk
            static = False
        return spk, mem


def _lif(mod) -> ScriptedLIF:
    return ScriptedLIF(mod.beta_value(), mod.threshold, mod.reset)


def _readout(model: nn.Module, fc: nn.Module) -> nn.Module:
    """The output layer's block: its Linear, then the readout batch norm when the model has one."""
    bn = getattr(model, "bn_out", None)
    return fc if bn is None or isinstance(bn, nn.Identity) else nn.Sequential(fc, bn)


def scripted_snn(model: nn.Module, steps: int, encoder: str = "direct") -> ScriptedSNN:
    """The :class:`ScriptedSNN` twin of a trained ``fc_snn`` or CSNN (a copy; eval mode)."""
    from engine.models.registry import CSNN, FCSNN

    model = copy.deepcopy(model).eval()
    stages: list[ScriptedStage] = []
    if isinstance(model, CSNN):
        with torch.no_grad():
            probe = torch.zeros(1, *model.input_shape)
            for conv, bn, pool, lif in zip(model.convs, model.bns, model.pools, model.lifs):
                block = ScriptedConv(conv, bn, pool)
                probe = block(probe)
                stages.append(ScriptedStage(block, _lif(lif), False))
        chw = tuple(probe.shape[1:])
        if model.hidden:
            block = ScriptedSeqLinear(model.fc_hidden, model.bn_hidden, chw)
            stages.append(ScriptedLinearStage(block, _lif(model.lif_hidden)))
            chw = None
        block = ScriptedSeqLinear(model.fc, getattr(model, "bn_out", None), chw)
        stages.append(ScriptedLinearStage(block, _lif(model.out)))
    elif isinstance(model, FCSNN):
        stages.append(ScriptedStage(nn.Sequential(model.fc1, model.bn1), _lif(model.lif1), True))
        stages.append(ScriptedStage(_readout(model, model.fc2), _lif(model.out), False))
    else:
        raise ExportError(f"model {type(model).__name__}: no scripted twin for it")
    return ScriptedSNN(model.input_norm, stages, steps, encoder == "direct").eval()


def to_torchscript(model: nn.Module, example: torch.Tensor, *, steps: int, encoder: str):
    """A ``torch.jit.ScriptModule`` of any of our models (see the module docstring)."""
    from engine.models.registry import is_spiking

    if is_spiking(model):
        try:
            with _quiet():
                return torch.jit.script(scripted_snn(model, steps, encoder))
        except Exception as exc:  # noqa: BLE001 - a TorchScript failure is one user error
            raise ExportError(f"TorchScript: cannot script the model ({_first(exc)})") from None
    model = copy.deepcopy(model).eval()
    with _quiet():
        try:
            return torch.jit.script(model)
        except Exception:  # noqa: BLE001 - scripting fails on some torchvision code: trace it
            pass
        try:
            with torch.no_grad():
                return torch.jit.trace(model, example, check_trace=False)
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"TorchScript: cannot trace the model ({_first(exc)})") from None


def save_torchscript(module, path, metadata: dict) -> None:
    """Save with the metadata as ``snn_explorer.json`` inside the archive."""
    try:
        with _quiet():
            torch.jit.save(module, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})
    except (OSError, RuntimeError) as exc:
        raise ExportError(f"{path}: cannot write ({_first(exc)})") from None


def load_torchscript(path) -> tuple[torch.jit.ScriptModule, dict]:
    """``(module, metadata)`` of a TorchScript file written by :func:`save_torchscript`."""
    extra = {METADATA_FILE: ""}
    try:
        with _quiet():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ExportError(f"{path}: not a TorchScript file ({_first(exc)})") from None
    raw = extra[METADATA_FILE]
    return module, json.loads(raw) if raw else {}


def export_onnx(model: nn.Module, example: torch.Tensor, path, metadata: dict) -> None:
    """Write an ANN as ONNX (input ``features`` ``[batch, C, H, W]``, output ``logits``)."""
    from engine.models.registry import is_spiking

    if is_spiking(model):
        raise ExportError(
            "ONNX export is for the ANN models; export a spiking model as nir or torchscript"
        )
    try:
        import onnx
    except ImportError:
        raise ExportError(
            "ONNX export needs onnx and onnxruntime: pip install 'snn-explorer[export]'"
        ) from None
    model = copy.deepcopy(model).eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=["features"],
                output_names=["logits"],
                dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
            )
        proto = onnx.load(str(path))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key = str(key)
            entry.value = value if isinstance(value, str) else json.dumps(value)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(path))
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - any exporter failure is one user error
        raise ExportError(f"ONNX: cannot export the model ({_first(exc)})") from None


def run_onnx(path, x) -> tuple:
    """``(logits, metadata)`` from onnxruntime (CPU) for features ``x`` ``[B, C, H, W]``."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("checking ONNX needs onnxruntime: pip install onnxruntime") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    return sess.run(["logits"], {"features": x})[0], meta


@contextlib.contextmanager
def _quiet():
    """Silence torch.jit's deprecation notices (TorchScript still works; they are not news)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
