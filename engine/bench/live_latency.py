"""Live latency benchmark: window end to prediction, for ``snn-explorer bench``.

The stream is replayed through :class:`engine.live.window.SlidingWindowClassifier` in 20-ms
blocks as a capture device would deliver them; each block counts as arriving when it is fed, so
the latency of a window is feature extraction + inference (+ resampling) after its last block,
with no sound device needed. Real capture adds the device's own buffering on top (a few ms
with PulseAudio at 20-ms blocks).
"""

from __future__ import annotations

import os
import time

import numpy as np

from engine.live.window import SlidingWindowClassifier, latency_summary


def _untrained_csnn(steps: int | None = None):
    """The report's CSNN with seeded, untrained weights, on FSDD's default features.

    Latency does not depend on the weights: every layer's work is dense.
    """
    import torch

    from engine.audio.features import FeatureConfig
    from engine.models.registry import build_model
    from engine.train.checkpoint import Checkpoint, Predictor
    from engine.train.config import RunConfig

    fc = FeatureConfig()
    shape = (1, *fc.shape())
    torch.manual_seed(0)
    model = build_model("csnn", shape, 10)
    ckpt = Checkpoint(
        path="(untrained csnn)",
        version=1,
        config=RunConfig(data="fsdd:", model="csnn").replace(steps=steps).to_dict(),
        model={"name": "csnn", "input_shape": list(shape), "n_classes": 10, "options": {}},
        class_names=[str(i) for i in range(10)],
        feature_config=fc.to_dict(),
        metrics={},
        state={},
        weights={k: v.detach().clone() for k, v in model.state_dict().items()},
    )
    return Predictor(ckpt)


def live_latency(
    checkpoint=None,
    n: int = 100,
    *,
    window_s: float = 1.0,
    hop_s: float = 0.1,
    block_s: float = 0.02,
    warmup: int = 5,
    seed: int = 0,
    steps: int | None = None,
) -> dict:
    """Median and 95th-percentile window-end-to-prediction latency over ``n`` windows.

    Parameters
    ----------
    checkpoint : path, Predictor or None
        The model; ``None`` benchmarks an untrained CSNN (the report's network, FSDD features)
        with ``steps`` time steps (default: the app's default run configuration's).
    n : int
        Windows measured (after ``warmup`` unmeasured ones).
    window_s, hop_s, block_s : float
        Window (1 s: the issue's goal is a median under 20 ms for a 1-s window), hop and block.

    Returns
    -------
    dict
        ``median_ms``, ``p95_ms``, ``mean_ms``, ``max_ms``, ``n``, ``window_s``, ``hop_s``,
        ``model``, ``steps``, ``threads``.
    """
    import torch

    from engine.train.checkpoint import Predictor

    if checkpoint is None:
        predictor = _untrained_csnn(steps)
    elif isinstance(checkpoint, (str, os.PathLike)):
        predictor = Predictor.from_checkpoint(checkpoint)
    else:
        predictor = checkpoint
    rate = int(predictor.feature_config.sample_rate)
    clf = SlidingWindowClassifier(predictor, rate, window_s, hop_s, skip_stale=False, sounds=False)
    block = max(1, int(round(block_s * rate)))
    rng = np.random.default_rng(seed)
    # speech-like input: noise bursts shaped by a slow envelope, so spikes are not all silent
    total = clf.window + clf.hop * (n + warmup) + block
    t = np.arange(total) / rate
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 1.3 * t)) ** 2
    y = (0.2 * envelope * rng.standard_normal(total)).astype(np.float32)
    clf.next_end = clf.window  # the first window is a full one
    for start in range(0, total, block):
        clf.push(y[start : start + block], arrived=time.perf_counter())
        if clf.count >= n + warmup:
            break
    latencies = clf.latencies[warmup : warmup + n]
    median, p95 = latency_summary(latencies)
    cfg = getattr(predictor, "config", None)
    model = getattr(getattr(predictor, "checkpoint", None), "model", {}) or {}
    return {
        "median_ms": median,
        "p95_ms": p95,
        "mean_ms": float(np.mean(latencies)) if latencies else float("nan"),
        "max_ms": float(np.max(latencies)) if latencies else float("nan"),
        "n": len(latencies),
        "window_s": clf.window_s,
        "hop_s": clf.hop_s,
        "model": model.get("name", "?"),
        "steps": getattr(cfg, "steps", None),
        "threads": torch.get_num_threads(),
    }
