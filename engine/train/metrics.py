"""Classification metrics and spiking-activity statistics (NumPy and torch, no state)."""

from __future__ import annotations

import numpy as np
import torch


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``[C, C]`` int64 counts, rows = true class, columns = predicted class."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def precision_recall_f1(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 (0 where undefined, as scikit-learn's zero_division=0)."""
    c = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(c)
    pred = c.sum(0)
    true = c.sum(1)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    s = precision + recall
    f1 = np.divide(2 * precision * recall, s, out=np.zeros_like(tp), where=s > 0)
    return precision, recall, f1


class ActivityTally:
    """Running per-layer spike totals over an evaluation pass (one instance per pass).

    ``add(record)`` takes a model's record dict ``{name: (spikes [T, B, ...], mem)}``;
    ``rates()`` gives mean spikes per neuron per step and ``dead()`` the fraction of neurons
    that never fired.
    """

    def __init__(self):
        self.total: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.fired: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def add(self, record: dict) -> None:
        for name, (spk, _mem) in record.items():
            s = spk.detach()
            if name == "input":
                self.total[name] = self.total.get(name, 0.0) + float(
                    s.abs().sum(dtype=torch.float64)
                )
                self.count[name] = self.count.get(name, 0) + s.numel()
                continue
            # float64 sums: bf16 spikes (autocast) would round a large count
            self.total[name] = self.total.get(name, 0.0) + float(s.sum(dtype=torch.float64))
            self.count[name] = self.count.get(name, 0) + s.numel()
            any_fired = (s != 0).flatten(2).any(0).any(0).cpu()
            prev = self.fired.get(name)
            self.fired[name] = any_fired if prev is None else (prev | any_fired)

    def rates(self) -> dict[str, float]:
        return {k: self.total[k] / max(self.count[k], 1) for k in self.total}

    def dead(self) -> dict[str, float]:
        return {k: 1.0 - float(v.float().mean()) for k, v in self.fired.items()}

    def neurons(self) -> dict[str, int]:
        return {k: int(v.numel()) for k, v in self.fired.items()}
