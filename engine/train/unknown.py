""" "I don't know": a prediction whose top probability is under a threshold, or a silent clip,
is reported as ``unknown`` rather than as the least unlikely class.

Used by ``snn-explorer classify``, ``snn-explorer listen`` and the Live tab.
"""

from __future__ import annotations

import numpy as np

UNKNOWN = "unknown"
DEFAULT_THRESHOLD = 0.5  # for 10 classes, five times chance; a clear favourite, not a coin toss
SILENCE_PEAK = 1e-3  # -60 dBFS: below this a clip holds nothing to classify


def is_silent(y: np.ndarray, floor: float = SILENCE_PEAK) -> bool:
    """True when the waveform's peak is under ``floor`` (or it is empty)."""
    y = np.asarray(y)
    return y.size == 0 or float(np.max(np.abs(y))) < floor


def decide(
    probs: np.ndarray, class_names: list[str], threshold: float = DEFAULT_THRESHOLD
) -> tuple[str, float]:
    """``(label, top probability)``; the label is ``unknown`` when the top probability is under
    ``threshold``."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.size == 0:
        return UNKNOWN, 0.0
    i = int(np.argmax(probs))
    p = float(probs[i])
    return (class_names[i] if p >= threshold else UNKNOWN), p
