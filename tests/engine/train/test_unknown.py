"""The "I don't know" rule: top probability under a threshold, or silence, is ``unknown``."""

from __future__ import annotations

import numpy as np

from engine.live.window import SlidingWindowClassifier
from engine.train.unknown import DEFAULT_THRESHOLD, UNKNOWN, decide, is_silent


def test_decide_and_silence():
    names = ["a", "b", "c"]
    assert decide(np.array([0.2, 0.7, 0.1]), names) == ("b", 0.7)
    label, p = decide(np.array([0.4, 0.35, 0.25]), names)
    assert label == UNKNOWN and p == 0.4
    assert decide(np.array([0.4, 0.35, 0.25]), names, threshold=0.0)[0] == "a"
    assert decide(np.array([]), names) == (UNKNOWN, 0.0)
    assert is_silent(np.zeros(100)) and is_silent(np.array([]))
    assert not is_silent(np.full(100, 0.01))
    assert 0 < DEFAULT_THRESHOLD < 1


class _Prediction:
    def __init__(self, probs):
        self.probs = np.asarray(probs, np.float32)
        self.index = int(np.argmax(probs))
        self.output_spikes = None


class _Loudness:
    """Probabilities that follow the clip's peak: a loud clip is 'b' at 0.9, a soft one 'a' at
    0.45 (a function of the input, so the rule is tested on what the window held)."""

    class_names = ["a", "b", "c"]

    class feature_config:  # noqa: N801 - the predictor protocol's attribute
        sample_rate = 8000
        duration = 0.5
        align = "centre"

    def predict_waveform(self, y, sr):
        return _Prediction([0.05, 0.9, 0.05] if np.max(np.abs(y)) > 0.3 else [0.45, 0.35, 0.2])


def test_window_predictions_say_unknown_under_the_threshold():
    rng = np.random.default_rng(0)
    loud = (0.5 * rng.standard_normal(4000)).astype(np.float32)
    soft = (0.05 * rng.standard_normal(4000)).astype(np.float32)
    clf = SlidingWindowClassifier(_Loudness(), 8000, sounds=False, threshold=0.5)
    p = clf.classify_clip(loud)
    assert p.said == "b" and not p.unknown
    p = clf.classify_clip(soft)
    assert p.class_name == "a" and p.unknown and p.said == UNKNOWN
    clf.threshold = 0.3
    assert clf.classify_clip(soft).said == "a"
    gated = SlidingWindowClassifier(_Loudness(), 8000, threshold=0.0)
    quiet = gated.classify_clip(np.zeros(4000, np.float32))
    assert quiet.quiet and quiet.said == UNKNOWN  # silence is never a class
