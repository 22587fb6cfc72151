"""Class balance: counts, class weights for the loss, sample weights for a balanced sampler."""

from __future__ import annotations

import numpy as np


def class_counts(y: np.ndarray, idx: np.ndarray | None = None, n_classes: int | None = None):
    """``int64 [C]`` examples per class among ``y[idx]`` (all of ``y`` when ``idx`` is None)."""
    y = np.asarray(y, dtype=np.int64)
    sub = y if idx is None else y[np.asarray(idx, dtype=np.int64)]
    c = int(n_classes) if n_classes is not None else (int(y.max()) + 1 if len(y) else 0)
    return np.bincount(sub, minlength=c).astype(np.int64)


def class_weights(
    y: np.ndarray, idx: np.ndarray | None = None, n_classes: int | None = None
) -> np.ndarray:
    """``float32 [C]`` inverse-frequency weights ``n / (C_present * count)`` (sklearn "balanced").

    A balanced set gets all ones; a class absent from ``idx`` gets weight 0 (it cannot be
    learned from these examples, and a finite weight keeps the loss finite).
    """
    counts = class_counts(y, idx, n_classes).astype(np.float64)
    present = counts > 0
    out = np.zeros_like(counts)
    if present.any():
        out[present] = counts.sum() / (present.sum() * counts[present])
    return out.astype(np.float32)


def balanced_sample_weights(
    y: np.ndarray, idx: np.ndarray | None = None, n_classes: int | None = None
) -> np.ndarray:
    """``float64 [len(idx)]`` weight per example so each class is drawn equally often.

    Pass to ``torch.utils.data.WeightedRandomSampler(weights, num_samples=len(idx))``; the
    weights sum to 1.
    """
    y = np.asarray(y, dtype=np.int64)
    sub = y if idx is None else y[np.asarray(idx, dtype=np.int64)]
    counts = class_counts(y, idx, n_classes)
    w = 1.0 / counts[sub].astype(np.float64)
    return w / w.sum() if len(w) else w
