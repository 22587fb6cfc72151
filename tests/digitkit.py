"""scikit-learn's 8x8 digits shaped like a FeatureSet of 8-band, 8-frame 'spectrograms'.

Real data with audio timing for training tests that need a spectrogram set (crops, shifts,
mixup, a run at chance) without reading audio.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.audio.features import FeatureConfig

#: 8 log-mel bands x 8 frames of 16 ms
SPECTRA = FeatureConfig(kind="logmel", n_mels=8, sample_rate=8000, hop_length=128, duration=0.112)


@dataclasses.dataclass(frozen=True)
class DigitSpectra:
    x: np.ndarray
    y: np.ndarray
    splits: dict
    class_names: list
    feature_config: FeatureConfig
    spec: str = "sklearn:digits"


def digit_spectra(
    n_class: int = 10, sizes: tuple[int, int, int] = (500, 100, 200), *, shuffle: bool = False
) -> DigitSpectra:
    """The digits of ``n_class`` classes split ``sizes`` (train, val, test) clips.

    ``shuffle`` permutes the labels: nothing is left to learn, a run ends at chance.
    """
    from sklearn.datasets import load_digits

    d = load_digits(n_class=n_class)
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    if shuffle:
        y = np.random.default_rng(0).permutation(y)
    order = np.random.default_rng(1 if shuffle else 0).permutation(len(y))
    a, b, c = np.cumsum(sizes)
    splits = {"train": order[:a], "val": order[a:b], "test": order[b:c]}
    assert SPECTRA.shape() == x.shape[-2:]
    return DigitSpectra(x, y, splits, [str(i) for i in range(n_class)], SPECTRA)
