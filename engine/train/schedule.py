"""The learning rate at each optimiser step: linear warm-up, then cosine, step or constant.

``RunConfig.schedule`` names the shape (``SCHEDULES`` in :mod:`engine.train.config`); the
training loop asks for the rate before every step.
"""

from __future__ import annotations

import math


def learning_rate(cfg, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The rate for optimiser step ``step`` (0-based) of a run of ``total_steps``."""
    warm = cfg.warmup_epochs * steps_per_epoch
    if warm and step < warm:
        return cfg.lr * (step + 1) / warm
    if cfg.schedule == "cosine":
        progress = (step - warm) / max(1.0, total_steps - warm)
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** ((step // steps_per_epoch) // cfg.step_size)
    return cfg.lr
