"""Model registry: build any model by name, run it with an encoder, score and count its work.

Names (``MODELS``): ``fc_snn`` (report Fig. 22-23), ``csnn`` (Fig. 24), ``csnn_avg`` (the CSNN
with average pooling, expressible in NIR), ``cnn`` (the CSNN's ReLU twin) and the torchvision
baselines ``resnet50``, ``resnet101``, ``efficientnet_b0``, ``vgg16``, ``densenet121``,
``mobilenet_v2`` (1-channel input, N classes, no pretrained weights).

Spiking models return :class:`engine.models.snn.SpikingOutput`; the others return logits.
:func:`run_model` hides the difference for the training loop, the predictor and export.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ConfigError
from engine.models.ann import CNN, TORCHVISION, TorchvisionNet
from engine.models.snn import CSNN, FCSNN, LIF, InputNorm, SpikingOutput
from engine.models.snn_deep import SCNN, CNNGap
from engine.models.snn_recurrent import RNN, SRNN

SPIKING_MODELS = ("fc_snn", "csnn", "csnn_avg", "scnn_gap", "srnn")
MODELS = ("fc_snn", "csnn", "csnn_avg", "cnn", "scnn_gap", "cnn_gap", "srnn", "rnn", *TORCHVISION)
# each spiking model's non-spiking twin: the same layers with ReLU/tanh for the neurons
TWINS = {"csnn": "cnn", "csnn_avg": "cnn", "scnn_gap": "cnn_gap", "srnn": "rnn"}

__all__ = [
    "CNN",
    "CSNN",
    "FCSNN",
    "LIF",
    "MODELS",
    "SPIKING_MODELS",
    "TWINS",
    "InputNorm",
    "SpikingOutput",
    "TorchvisionNet",
    "build_model",
    "check_name",
    "class_scores",
    "count_params",
    "first_spike_times",
    "is_spiking",
    "layer_macs",
    "loss_value",
    "model_options",
    "ops_per_inference",
    "run_model",
    "twin_of",
]


def check_name(name: str) -> str:
    if name not in MODELS:
        raise ConfigError(f"model: {name!r} is unknown; choose one of {', '.join(MODELS)}")
    return name


def twin_of(name: str) -> str:
    """The non-spiking twin of a spiking model (``TWINS``); ConfigError for any other name."""
    check_name(name)
    if name not in TWINS:
        have = ", ".join(f"{k} -> {v}" for k, v in TWINS.items())
        raise ConfigError(f"model: {name!r} has no non-spiking twin ({have})")
    return TWINS[name]


def build_model(name: str, input_shape: tuple[int, int, int], n_classes: int, **opts) -> nn.Module:
    """Build a model by name for inputs ``[C, H, W]`` and ``n_classes`` outputs.

    ``opts`` are the model's keyword options (``channels``, ``kernels``, ``pooling``, ``hidden``,
    ``batchnorm``, ``input_norm``; LIF: ``beta``, ``threshold``, ``reset``, ``surrogate``,
    ``slope``, ``learn_beta``; torchvision: ``small_input``, ``min_size``). Unknown options
    raise ConfigError naming them.
    """
    check_name(name)
    input_shape = tuple(int(v) for v in input_shape)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ConfigError(f"input shape {input_shape} must be (channels, height, width)")
    if opts.pop("spike_input", False):  # encoder "spikes": the last axis is time, one step each
        model = build_model(name, (*input_shape[:-1], 1), n_classes, **opts)
        model.spike_input = True
        return model
    if n_classes < 2:
        raise ConfigError(f"classes: {n_classes}; a classifier needs at least 2 classes")
    try:
        if name == "fc_snn":
            return FCSNN(input_shape, n_classes, **opts)
        if name in ("csnn", "csnn_avg"):
            if name == "csnn_avg":
                opts = {**opts, "pooling": "avg"}
            return CSNN(input_shape, n_classes, **opts)
        if name == "cnn":
            return CNN(input_shape, n_classes, **_ann_opts(opts))
        if name in ("scnn_gap", "srnn"):
            return (SCNN if name == "scnn_gap" else SRNN)(input_shape, n_classes, **opts)
        if name in ("cnn_gap", "rnn"):
            return (CNNGap if name == "cnn_gap" else RNN)(input_shape, n_classes, **_ann_opts(opts))
        return TorchvisionNet(name, input_shape, n_classes, **_ann_opts(opts))
    except (TypeError, ValueError, OverflowError) as exc:
        # an option the model does not take (a typo in [model_options]) or of the wrong kind
        raise ConfigError(f"model_options for {name}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


_LIF_KEYS = ("beta", "threshold", "reset", "surrogate", "slope", "learn_beta")


def _ann_opts(opts: dict) -> dict:
    """ANNs ignore the spiking options the run config always passes."""
    return {k: v for k, v in opts.items() if k not in _LIF_KEYS}


def is_spiking(model_or_name) -> bool:
    """True for the spiking models (by name or instance)."""
    if isinstance(model_or_name, str):
        return check_name(model_or_name) in SPIKING_MODELS
    return bool(getattr(model_or_name, "spiking", False))


def model_options(cfg, image_input: bool = False) -> dict:
    """``build_model`` options for a :class:`engine.train.config.RunConfig` (explicit ones win).

    The input scaling defaults to per-row z-scores for audio features (global for images), and
    to per-row min-max into [0, 1] for the rate and latency encoders.
    """
    opts = {}
    if is_spiking(cfg.model):
        opts.update(
            beta=cfg.beta,
            threshold=cfg.threshold,
            reset=cfg.reset,
            surrogate=cfg.surrogate,
            learn_beta=cfg.learn_beta,
        )
        if cfg.slope is not None:
            opts["slope"] = cfg.slope
    if is_spiking(cfg.model) and cfg.encoder in ("rate", "latency", "delta"):
        opts["input_norm"] = "minmax"
    elif is_spiking(cfg.model) and cfg.encoder == "spikes":
        opts.update(input_norm="none", spike_input=True)
    else:
        opts["input_norm"] = "global" if image_input else "standard"
    opts.update(cfg.model_options)
    return opts


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run_model(
    model: nn.Module,
    x: torch.Tensor,
    steps: int = 25,
    encoder: str = "direct",
    encoder_options: dict | None = None,
    generator: torch.Generator | None = None,
    record: bool = False,
):
    """Run a model on a static batch ``x [B, C, H, W]``.

    Spiking models get the direct current (first layer computed once) or the named encoder's
    spikes of the scaled input; ANNs get ``x``. Returns a SpikingOutput or logits.
    """
    if not is_spiking(model):
        return model(x)
    if encoder == "direct":
        return model(x, steps=steps, record=record)
    if encoder == "spikes":  # x already is spikes, time last: [B, C, H, T] -> [T, B, C, H, 1]
        x_seq = x.permute(3, 0, 1, 2).unsqueeze(-1)
        out = model(x_seq, record=record)
        if record:
            out.record["input"] = (x_seq, None)
        return out
    from engine.neuro.encoders import encode

    params = dict(encoder_options or {})
    if encoder == "rate":
        params["seed_or_generator"] = generator
    x_seq = encode(encoder, model.input_norm(x), steps, **params)
    out = model(x_seq.to(x.dtype), record=record)
    if record:
        out.record["input"] = (x_seq, None)
    return out


def first_spike_times(spikes: torch.Tensor) -> torch.Tensor:
    """Index of each neuron's first spike ``[B, N]`` (``T`` when it never fires)."""
    t = spikes.shape[0]
    fired = spikes > 0
    steps = torch.arange(t, device=spikes.device).view(t, *([1] * (spikes.dim() - 1)))
    return torch.where(fired, steps, torch.full_like(steps, t)).amin(0)


def class_scores(out, loss: str = "ce_count", predict: str = "count"):
    """``(logits, decision)`` for a batch.

    ``logits`` ``[B, C]`` are what the loss sees (spike counts, or the mean membrane for
    ``ce_mem``; an ANN's outputs); softmax of them gives class probabilities. ``decision``
    ``[B, C]`` is what the prediction takes the argmax of: spike counts with ties broken by the
    membrane, minus the first-spike time (``first_spike``), or the mean membrane (``mem``).
    """
    if not isinstance(out, SpikingOutput):
        return out, out
    counts = out.spikes.sum(0)
    mem = out.mem.mean(0)
    logits = mem if loss == "ce_mem" else counts
    tie = 0.5 * torch.sigmoid(mem.detach().float())  # < 1: only breaks ties between counts
    if predict == "mem":
        decision = mem
    elif predict == "first_spike":
        first = first_spike_times(out.spikes).to(counts.dtype)
        decision = -first + (counts + tie) / (out.spikes.shape[0] + 2.0)
    else:
        decision = (counts + tie) if loss != "ce_mem" else mem
    return logits, decision


def loss_value(
    out,
    y: torch.Tensor,
    loss: str = "ce_count",
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The training loss (report section 2.3.1 for ``ce_count``).

    ``weight`` are class weights; ``label_smoothing`` applies to the cross-entropy losses.
    """
    ls = float(label_smoothing)
    if not isinstance(out, SpikingOutput):
        return F.cross_entropy(out.float(), y, weight=weight, label_smoothing=ls)
    if loss == "ce_count":
        return F.cross_entropy(out.spikes.sum(0).float(), y, weight=weight, label_smoothing=ls)
    if loss == "ce_mem":
        t, b, c = out.mem.shape
        y_t = y.unsqueeze(0).expand(t, b).reshape(-1)
        return F.cross_entropy(
            out.mem.reshape(t * b, c).float(), y_t, weight=weight, label_smoothing=ls
        )
    if loss == "mse_count":
        # snnTorch's mse_count_loss: the right class should fire 80% of steps, others 20%
        rate = out.spikes.float().mean(0)
        target = torch.full_like(rate, 0.2)
        target.scatter_(1, y.unsqueeze(1), 0.8)
        per = ((rate - target) ** 2).mean(1)
        if weight is not None:
            w = weight[y]
            return (per * w).sum() / w.sum()
        return per.mean()
    raise ConfigError(f"loss: {loss!r} is unknown")


def layer_macs(model: nn.Module, input_shape: tuple[int, int, int]) -> dict[str, int]:
    """Multiply-accumulates per sample of every Conv2d and Linear layer (one step of an SNN)."""
    if getattr(model, "spike_input", False):  # one step sees one time bin
        input_shape = (*input_shape[:-1], 1)
    macs: dict[str, int] = {}
    hooks = []

    def hook(name):
        def fn(mod, inp, out):
            n = inp[0].shape[0]
            if isinstance(mod, nn.Conv2d):
                per = (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
            else:
                per = mod.in_features
            macs[name] = macs.get(name, 0) + int(out.numel() // max(n, 1)) * per

        return fn

    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            hooks.append(mod.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            dev = next(model.parameters()).device
            x = torch.zeros(1, *input_shape, device=dev)
            model(x, steps=1) if is_spiking(model) else model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if hasattr(model, "adjust_macs"):  # layers a forward hook cannot see (recurrent, pooled)
        macs = model.adjust_macs(macs, input_shape)
    return macs


def ops_per_inference(
    model: nn.Module,
    macs: dict[str, int],
    rates: dict[str, float] | None = None,
    steps: int = 1,
    encoder: str = "direct",
) -> dict[str, float]:
    """Estimated work for one inference: ``{"synops": ..., "macs": ...}``.

    ANNs: every layer's MACs. Spiking models: a layer fed by spikes costs its MACs times the
    mean firing rate of its input times ``T`` (synaptic operations: one accumulate per spike and
    synapse); the first layer under the direct encoding costs its MACs once (its current is
    computed once), under a spike encoder MACs x input rate x T.
    """
    if not is_spiking(model):
        return {"synops": 0.0, "macs": float(sum(macs.values()))}
    rates = rates or {}
    if hasattr(model, "inference_steps"):  # srnn: one step per frame
        steps = model.inference_steps(steps)
    synops = dense = 0.0
    for name, src in model.op_layers():
        m = macs.get(name, 0)
        if src == "input" and encoder == "direct":
            dense += m
        else:
            synops += m * float(rates.get(src, 0.0)) * steps
    return {"synops": synops, "macs": dense}
