"""A spiking recurrent network that reads a spectrogram frame by frame (``srnn``) and its twin (``rnn``).

The time axis is the spectrogram's own: ``T`` = number of frames, and step ``t`` sees frame
``t`` (``C x n_mels`` or ``C x n_mfcc`` features); nothing is repeated, so the run config's
``steps`` does not apply. Both models are built by :class:`_RecurrentLayers` from the same
layer definitions, per layer ``l``::

    I[t] = BN(W_l x[t]) + R_l h[t-1]          (fcs.l, bns.l, recs.l; no bias in R_l)
    h[t] = neuron(I[t])                        (neurons.l)

then a readout ``BN(W_out h[t])`` per frame (fc, bn_out) into ``out``. In ``srnn`` the neuron is
an ALIF population (:mod:`engine.neuro.alif`: threshold adaptation with its own decay ``rho``,
learnable ``beta``) whose ``h`` is its spikes, and ``out`` is a LIF population: the class scores
are the output spike counts or mean membranes over the frames (``loss`` / ``predict`` as for
the other spiking models). In ``rnn`` the neuron is ``tanh`` (an Elman network) and ``out`` is
``nn.Identity``: the logits are the readout's mean over the frames.

Streaming: ``init_state(batch)`` and ``forward_stream(frames, state)`` carry the neurons' state
from one chunk of frames to the next; chunks joined give what one pass over all frames gives
(evaluation mode: batch norm uses its running statistics).
"""

from __future__ import annotations

import torch
from torch import nn

from engine.errors import ConfigError
from engine.models.snn import LIF, InputNorm, SpikingOutput, check_size, int_option
from engine.neuro.alif import ALIF, ALIFState
from engine.neuro.lif import lif_multistep

LIF_OPTIONS = ("beta", "threshold", "reset", "surrogate", "slope", "learn_beta")
ALIF_OPTIONS = ("rho", "adapt")


def _hidden_sizes(hidden) -> tuple[int, ...]:
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = [hidden]
    if not isinstance(hidden, (list, tuple)) or not 1 <= len(hidden) <= 2:
        raise ConfigError(f"model_options.hidden: {hidden!r} must be 1 or 2 layer sizes")
    return tuple(int_option("hidden", h, 1, 4096) for h in hidden)


class _RecurrentLayers(nn.Module):
    """The layers shared by ``srnn`` and ``rnn`` (``neuron``/``out`` make the difference)."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_classes: int,
        neuron,
        out,
        hidden=(128,),
        batchnorm: bool = True,
        readout_norm: bool = True,
        input_norm: str = "standard",
    ):
        super().__init__()
        c, h, w = (int(v) for v in input_shape)
        sizes = _hidden_sizes(hidden)
        self.input_shape = (c, h, w)
        self.input_norm = InputNorm(c, h, input_norm)
        self.fcs, self.bns, self.recs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.neurons = nn.ModuleList()
        n_in = c * h
        for size in sizes:
            check_size(n_in * size + size * size)
            self.fcs.append(nn.Linear(n_in, size))
            self.bns.append(nn.BatchNorm1d(size) if batchnorm else nn.Identity())
            self.recs.append(nn.Linear(size, size, bias=False))
            self.neurons.append(neuron())
            n_in = size
        self.fc = nn.Linear(n_in, n_classes)
        self.bn_out = nn.BatchNorm1d(n_classes) if readout_norm else nn.Identity()
        self.out = out()

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled input ``[B, C, H, W]`` as a frame sequence ``[W, B, C * H]``.

        Under the ``spikes`` encoder (``spike_input``: SHD-style spike trains, one step per time
        bin) the input already is a sequence ``[T, B, C, H, 1]``.
        """
        if x.dim() == 5 and getattr(self, "spike_input", False) and x.shape[-1] == 1:
            return x.flatten(2)
        if x.dim() != 4:
            raise ConfigError(
                f"input: {type(self).__name__} reads a spectrogram [B, C, H, W] frame by frame "
                f"(got {tuple(x.shape)}); use encoder = direct"
            )
        return self.input_norm(x).permute(3, 0, 1, 2).flatten(2)

    @staticmethod
    def per_step(seq: torch.Tensor, module: nn.Module) -> torch.Tensor:
        """A stateless module over ``[T, B, N]`` as one batch of ``T * B``."""
        return module(seq.flatten(0, 1)).unflatten(0, seq.shape[:2])


class SRNN(_RecurrentLayers):
    """``srnn``: ALIF layers with recurrent weights, a LIF output layer.

    Options: ``hidden`` (one or two layer sizes, default 128), ``batchnorm``, ``readout_norm``,
    ``input_norm``; LIF options (``beta``, ``threshold``, ``reset``, ``surrogate``, ``slope``,
    ``learn_beta``) for every layer; ALIF ``rho`` (adaptation decay per frame) and ``adapt``
    (threshold increase per spike).
    """

    spiking = True

    def __init__(self, input_shape, n_classes, **opts):
        lif = {k: opts.pop(k) for k in list(opts) if k in LIF_OPTIONS}
        alif = {k: opts.pop(k) for k in list(opts) if k in ALIF_OPTIONS}
        super().__init__(
            input_shape,
            n_classes,
            neuron=lambda: ALIF(**lif, **alif),
            out=lambda: LIF(**lif),
            **opts,
        )
        self.layer_names = tuple(f"alif{i + 1}" for i in range(len(self.fcs))) + ("out",)

    def inference_steps(self, steps: int) -> int:
        """Time steps of one inference: the number of frames, whatever ``steps`` says (the
        run's ``steps`` under the ``spikes`` encoder, whose bins the model does not see)."""
        return int(steps) if getattr(self, "spike_input", False) else self.input_shape[2]

    def op_layers(self) -> list[tuple[str, str]]:
        rows = [("fcs.0", "input")]
        for i in range(len(self.fcs)):
            if i:
                rows.append((f"fcs.{i}", f"alif{i}"))
            rows.append((f"recs.{i}", f"alif{i + 1}"))
        rows.append(("fc", f"alif{len(self.fcs)}"))
        return rows

    def adjust_macs(self, macs: dict[str, int], input_shape) -> dict[str, int]:
        """Recurrent maps (run inside the neuron loop, unseen by forward hooks) per step; the
        input layer counts every frame (the input changes each step)."""
        macs = dict(macs)
        for i, rec in enumerate(self.recs):
            macs[f"recs.{i}"] = rec.in_features * rec.out_features
        macs["fcs.0"] = self.fcs[0].in_features * self.fcs[0].out_features * int(input_shape[2])
        return macs

    def init_state(self, batch: int, device=None) -> tuple:
        """Resting state for ``batch`` streams: one ALIFState per layer, then the output membrane."""
        states = tuple(
            n.init_state(batch, fc.out_features, device=device)
            for n, fc in zip(self.neurons, self.fcs)
        )
        return (*states, torch.zeros(batch, self.fc.out_features, device=device))

    def forward(self, x: torch.Tensor, steps: int | None = None, record: bool = False):
        """SpikingOutput ``[W, B, n_classes]`` for ``x [B, C, H, W]`` (``steps`` is ignored)."""
        return self._run(self.frames(x), None, record)[0]

    def forward_stream(self, frames: torch.Tensor, state: tuple | None = None, record=False):
        """``(SpikingOutput of these frames, state after them)`` for ``frames [B, C, H, n]``."""
        if state is None:
            state = self.init_state(frames.shape[0], frames.device)
        return self._run(self.frames(frames), state, record)

    def _run(self, seq: torch.Tensor, state: tuple | None, record: bool):
        rec: dict | None = {} if record else None
        new_state = []
        h = seq
        for i, (fc, bn, r, neuron) in enumerate(zip(self.fcs, self.bns, self.recs, self.neurons)):
            cur = self.per_step(fc(h), bn)
            s0: ALIFState | None = state[i] if state is not None else None
            h, mem, s = neuron(cur, s0, r.weight)
            new_state.append(s)
            if rec is not None:
                rec[f"alif{i + 1}"] = (h, mem)
        cur = self.per_step(self.fc(h), self.bn_out)
        mem0 = state[-1] if state is not None else None
        o = self.out
        beta = o.beta.clamp(0.0, 1.0) if o.learn_beta else o.beta_value()
        if cur.dtype in (torch.float16, torch.bfloat16):
            cur = cur.float()
        spk, mem = lif_multistep(cur, beta, o.threshold, o.reset, o.surrogate, o.slope, mem0=mem0)
        if rec is not None:
            rec["out"] = (spk, mem)
        last = mem[-1] if mem.shape[0] else mem0
        return SpikingOutput(spk, mem, rec), (*new_state, last)


class RNN(_RecurrentLayers):
    """``rnn``: the same layers as ``srnn`` with ``tanh`` for ALIF (an Elman network) and the
    readout's mean over the frames as logits. Spiking-only options are ignored, so the twin
    can take the spiking model's ``model_options``."""

    spiking = False

    def __init__(self, input_shape, n_classes, **opts):
        for k in ALIF_OPTIONS:
            opts.pop(k, None)
        super().__init__(input_shape, n_classes, neuron=nn.Tanh, out=nn.Identity, **opts)

    def adjust_macs(self, macs: dict[str, int], input_shape) -> dict[str, int]:
        """Every linear map runs once per frame."""
        frames = int(input_shape[2])
        maps = {f"fcs.{i}": m for i, m in enumerate(self.fcs)}
        maps.update({f"recs.{i}": m for i, m in enumerate(self.recs)}, fc=self.fc)
        return {k: m.in_features * m.out_features * frames for k, m in maps.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.frames(x)
        for fc, bn, r, act in zip(self.fcs, self.bns, self.recs, self.neurons):
            cur = self.per_step(fc(h), bn)
            prev = torch.zeros_like(cur[0])
            outs = []
            for t in range(cur.shape[0]):
                prev = act(cur[t] + r(prev))
                outs.append(prev)
            h = torch.stack(outs)
        return self.out(self.per_step(self.fc(h), self.bn_out).mean(0))
