"""Batch-level parts of the small-data recipe: random crops of long clips, crop-averaged
predictions, random time shifts of short ones, and mixup.

Crops: a model trained with ``RunConfig.crop_s`` > 0 sees ``crop`` frames of each clip's
feature matrix ``[B, C, F, T]`` (a random window per example in training) and, at test, the
whole clip as overlapping windows (half a crop apart, the last one flush with the end) whose
class scores are averaged. Mixup (Zhang et al. 2018): ``x = lam x_i + (1 - lam) x_j`` with
``lam ~ Beta(alpha, alpha)`` once per batch, and the loss mixed with the same weight.
Every random draw comes from the caller's ``torch.Generator``.
"""

from __future__ import annotations

import numpy as np
import torch


def crop_frames(crop_s: float, feature_config: dict | None, total: int) -> int:
    """Frames in a ``crop_s``-second crop of features made with ``feature_config``.

    0 (no cropping) when ``crop_s`` is 0, the features are images or have no timing, or the
    crop would hold the whole clip anyway.
    """
    fc = feature_config or {}
    if crop_s <= 0 or fc.get("kind", "image") == "image" or not fc.get("hop_length"):
        return 0
    frames = 1 + int(round(crop_s * int(fc["sample_rate"]))) // int(fc["hop_length"])
    return frames if frames < total else 0


def random_crops(x: torch.Tensor, frames: int, generator: torch.Generator | None) -> torch.Tensor:
    """A random window of ``frames`` frames (last axis) of each example of ``x [B, ..., T]``."""
    b, t = x.shape[0], x.shape[-1]
    if frames <= 0 or frames >= t:
        return x
    starts = torch.randint(0, t - frames + 1, (b,), generator=generator)
    idx = starts[:, None] + torch.arange(frames)[None, :]
    idx = idx.view(b, *([1] * (x.dim() - 2)), frames).expand(*x.shape[:-1], frames)
    return torch.gather(x, -1, idx.to(x.device))


def crop_starts(total: int, frames: int) -> list[int]:
    """Starts of the test windows: half a crop apart, the last flush with the end."""
    if frames <= 0 or frames >= total:
        return [0]
    hop = max(1, frames // 2)
    starts = list(range(0, total - frames + 1, hop))
    if starts[-1] != total - frames:
        starts.append(total - frames)
    return starts


def crop_views(x: torch.Tensor, frames: int) -> list[torch.Tensor]:
    """The test windows of ``x [B, ..., T]`` (``[x]`` itself when not cropping)."""
    if frames <= 0 or frames >= x.shape[-1]:
        return [x]
    return [x[..., s : s + frames] for s in crop_starts(x.shape[-1], frames)]


def mixup_batch(
    x: torch.Tensor, alpha: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(mixed x, partner index, lam)``: each example mixed with a random partner.

    The loss of the mixed batch is ``lam * loss(y) + (1 - lam) * loss(y[partner])``.
    """
    partner = torch.randperm(x.shape[0], generator=generator)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    lam = max(lam, 1.0 - lam)  # the example keeps the larger share: its own label dominates
    return lam * x + (1.0 - lam) * x[partner], partner, lam
