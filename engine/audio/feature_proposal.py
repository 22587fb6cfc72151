"""Feature settings chosen from the data: clip length, sample rate, window and hop, MFCC or log-mel.

A data source knows each clip's duration and native sample rate (its ``AudioInfo`` headers), so
the front end can be proposed instead of guessed:

- **clip length**: the 95th percentile of the durations, rounded up to a "nice" length
  (0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10 s) and capped at ``MAX_CLIP_S``;
- **sample rate**: the data's most common rate, never above it, capped at 22,050 Hz (nothing a
  small spiking network hears needs more than 11 kHz of bandwidth);
- **window**: about 25 ms rounded to the nearest power of two samples (``n_fft``), hop half a
  window (16 ms at 8 kHz, 11.6 ms at 22,050 Hz); half-window hops keep the frame count, and so
  the cost of a spiking network, half that of 10 ms hops;
- **kind**: 20 MFCCs of 40 mel bands for narrow-band short clips (speech-like, FSDD), a 64-band
  log-mel for wide-band or long clips (environmental sound), where convolutions want the bands.

For FSDD (8 kHz, 95 % of clips under 0.67 s) this gives exactly today's defaults
(``FeatureConfig()``): 1 s, 8 kHz, n_fft 256, hop 128, 40 mels, 20 MFCCs.

A warning is raised in the text when the fixed length throws away more than half of many
clips (the recipe then trains on random crops; see ``engine.train.recipe``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.audio.features import FeatureConfig
from engine.errors import DataError

#: longest proposed clip (s): longer clips are cropped (training) or averaged over crops (test)
MAX_CLIP_S = 10.0
#: highest proposed sample rate (Hz)
MAX_RATE = 22_050
#: proposed clip lengths (s): the percentile is rounded up to the next of these
NICE_LENGTHS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
#: which share of the clips the length should cover
COVER = 0.95
#: window length aimed at (s) before rounding to a power of two samples
WINDOW_S = 0.025
#: warn when more than this share of clips loses more than half its length
WARN_SHARE = 0.10


@dataclass(frozen=True)
class FeatureProposal:
    """A proposed ``FeatureConfig`` with the facts it came from.

    Attributes
    ----------
    config : FeatureConfig
    n_clips : int
    duration_p95 : float
        95th percentile of the clip durations (s).
    longest : float
    native_rate : int
        The most common native sample rate (Hz).
    cut_share : float
        Share of the clips of which the fixed length keeps less than half.
    warning : str
        Empty, or one line saying how much the fixed length throws away.
    """

    config: FeatureConfig
    n_clips: int
    duration_p95: float
    longest: float
    native_rate: int
    cut_share: float
    warning: str = ""

    def describe(self) -> str:
        """One line for the Data tab and the logs."""
        c = self.config
        name = f"{c.n_mfcc} MFCC" if c.kind == "mfcc" else f"{c.n_mels}-band log-mel"
        win_ms = 1000 * c.n_fft / c.sample_rate
        hop_ms = 1000 * c.hop_length / c.sample_rate
        text = (
            f"proposed features: {name}, {c.sample_rate} Hz, {c.duration:g} s clips "
            f"(95 % of {self.n_clips} clips are under {self.duration_p95:.2f} s), "
            f"{win_ms:.0f} ms windows every {hop_ms:.1f} ms ({c.frames()} frames)"
        )
        return f"{text}. {self.warning}" if self.warning else text


def nice_length(seconds: float) -> float:
    """``seconds`` rounded up to the next of ``NICE_LENGTHS`` (at most ``MAX_CLIP_S``).

    A 20 ms tolerance keeps clips cut at exactly 5 s (headers say 5.0002 s) at 5 s.
    """
    for length in NICE_LENGTHS:
        if seconds <= length + 0.02:
            return min(length, MAX_CLIP_S)
    return MAX_CLIP_S


def proposed_rate(rates: Sequence[int]) -> int:
    """The most common native rate, capped at ``MAX_RATE`` (ties: the lower rate)."""
    counts = Counter(int(r) for r in rates)
    top = max(counts.values())
    rate = min(r for r, n in counts.items() if n == top)
    return min(rate, MAX_RATE)


def window_samples(sample_rate: int) -> int:
    """About ``WINDOW_S`` of samples, rounded to the nearest power of two (in log terms)."""
    return 2 ** int(round(math.log2(WINDOW_S * sample_rate)))


def propose_features(durations: Sequence[float], rates: Sequence[int]) -> FeatureProposal:
    """Propose a ``FeatureConfig`` from the clips' durations (s) and native sample rates (Hz).

    Raises
    ------
    DataError
        No clips, or durations / rates that are not positive numbers.
    """
    d = np.asarray(list(durations), dtype=np.float64)
    r = [int(v) for v in rates]
    if d.size == 0 or len(r) != d.size:
        raise DataError("feature proposal: needs the duration and sample rate of every clip")
    if not np.all(np.isfinite(d)) or d.min() <= 0 or min(r) <= 0:
        raise DataError("feature proposal: clip durations and sample rates must be positive")
    p95 = float(np.percentile(d, 100 * COVER))
    duration = nice_length(p95)
    rate = proposed_rate(r)
    n_fft = window_samples(rate)
    narrow = rate <= 16_000
    speech_like = narrow and duration <= 2.0
    if speech_like:
        kind, n_mels, n_mfcc = "mfcc", 40, 20
    else:
        kind, n_mels, n_mfcc = "logmel", 64, 20
    cfg = FeatureConfig(
        kind=kind,
        sample_rate=rate,
        duration=duration,
        align="centre",
        n_mfcc=n_mfcc,
        n_fft=n_fft,
        hop_length=n_fft // 2,
        n_mels=n_mels,
        normalise="per_clip",
    )
    cut = float(np.mean(d > 2 * duration))
    warning = ""
    if cut > WARN_SHARE:
        warning = (
            f"warning: {100 * cut:.0f} % of the clips are longer than {2 * duration:g} s, so a "
            f"fixed {duration:g} s length throws away most of each (longest "
            f"{d.max():.1f} s); train on random crops and average predictions over crops, "
            f"or cut the clips into shorter ones"
        )
    return FeatureProposal(cfg, int(d.size), p95, float(d.max()), rate, cut, warning)


def propose_for_source(source) -> FeatureProposal | None:
    """The proposal for an opened data source (``None`` for image sources, whose pixels are
    the features)."""
    infos = getattr(source, "infos", None)
    if getattr(source, "kind", "audio") != "audio" or not infos:
        return None
    return propose_features([i.duration for i in infos], [i.sample_rate for i in infos])
