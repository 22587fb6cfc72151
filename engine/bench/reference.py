"""The baseline ``snn-explorer bench`` measures against: the report's CSNN as snnTorch users write it.

Report Fig. 24 and snnTorch's tutorials: ``snn.Leaky`` layers, and a Python loop over the time
steps that runs the whole network once per step (convolution, max pooling, LIF, ...) on the same
input (the MFCC as a direct current), with the linear layer's input size derived from the input
shape instead of the report's hard-coded 38208. Training is BPTT through that loop with
cross-entropy on the output spike counts (report section 2.3.1) and Adam.
"""

from __future__ import annotations

import snntorch as snn
import torch
import torch.nn.functional as F
from snntorch import surrogate
from torch import nn


class ReferenceCSNN(nn.Module):
    """``[Conv -> MaxPool -> Leaky] x n -> Linear -> Leaky``, stepped in a Python loop."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_classes: int,
        channels: tuple[int, ...] = (12, 64),
        kernels: tuple[int, ...] = (5, 3),
        beta: float = 0.9,
        steps: int = 25,
    ):
        super().__init__()
        spike_grad = surrogate.atan()  # snnTorch's default surrogate (arctan, alpha = 2)
        self.steps = int(steps)
        self.convs = nn.ModuleList()
        self.lifs = nn.ModuleList()
        c = input_shape[0]
        for ch, k in zip(channels, kernels):
            self.convs.append(nn.Conv2d(c, ch, k))
            self.lifs.append(snn.Leaky(beta=beta, spike_grad=spike_grad))
            c = ch
        with torch.no_grad():
            probe = torch.zeros(1, *input_shape)
            for conv in self.convs:
                probe = F.max_pool2d(conv(probe), 2)
        self.fc = nn.Linear(probe.numel(), n_classes)
        self.lif_out = snn.Leaky(beta=beta, spike_grad=spike_grad)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Output spikes and membranes ``[T, B, n_classes]`` for a static input ``[B, C, H, W]``."""
        mems = [lif.init_leaky() for lif in self.lifs]
        mem_out = self.lif_out.init_leaky()
        spk_rec, mem_rec = [], []
        for _step in range(self.steps):
            spk = x
            for i, (conv, lif) in enumerate(zip(self.convs, self.lifs)):
                cur = F.max_pool2d(conv(spk), 2)
                spk, mems[i] = lif(cur, mems[i])
            cur = self.fc(spk.view(x.shape[0], -1))
            spk_out, mem_out = self.lif_out(cur, mem_out)
            spk_rec.append(spk_out)
            mem_rec.append(mem_out)
        return torch.stack(spk_rec), torch.stack(mem_rec)


def reference_train_step(model: ReferenceCSNN, opt: torch.optim.Optimizer, x, y) -> float:
    """One BPTT training step: cross-entropy on spike counts, as in the report."""
    spk, _mem = model(x)
    loss = F.cross_entropy(spk.sum(0), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())
