"""The sliding-window classifier behind the Live tab and ``snn-explorer listen``.

Samples go into a :class:`RingBuffer`. Every ``hop`` the window that ends there (as long as the
model's clip) is classified: a :class:`WindowPrediction`. A :class:`LevelGate` also cuts the
stream into sounds (level above the noise floor, with a short hang-over); each sound is
classified once, in a window placed on it the way training placed a clip (``align``: centred,
at the start or at the end): a :class:`SoundEvent`, the "what was just said" answer.

Latency is measured from the arrival of the block holding a window's last sample to the end of
its prediction. When inference falls behind, stale hop windows are skipped (never sounds), so
the classifier never lags further and further behind the microphone. A prediction whose top
probability is under ``threshold``, or of a quiet window, is ``unknown`` (``said``).

A ``predictor`` is anything with ``predict_waveform(y, sr)`` returning a prediction with
``index`` (class number), ``probs`` and ``output_spikes``, plus ``feature_config`` (its
``sample_rate``, ``duration`` and ``align``) and ``class_names``:
:class:`engine.train.checkpoint.Predictor` is the real one.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.audio.load import resample
from engine.live.frame_stream import FrameStream, streams
from engine.live.stream_parts import LevelGate, RingBuffer  # noqa: F401 - re-exported
from engine.train.unknown import DEFAULT_THRESHOLD, UNKNOWN


@dataclass(frozen=True)
class WindowPrediction:
    """One window's classification. ``start``/``end`` are sample indices at ``sample_rate``."""

    index: int
    start: int
    end: int
    sample_rate: int
    label: int
    class_name: str
    probs: np.ndarray  # [C]
    output_spikes: np.ndarray | None  # [T, C] or None for a non-spiking model
    latency_ms: float
    rms: float
    dropped: int  # windows skipped before this one because inference was behind
    quiet: bool = False  # no 10-ms frame of the window rose above the level gate's threshold
    waveform: np.ndarray | None = None  # the clip the model saw, at its rate (when asked for)
    features: np.ndarray | None = None  # [F, frames] what the model saw (when asked for)
    unknown: bool = False  # top probability under the classifier's threshold, or quiet

    @property
    def confidence(self) -> float:
        return float(self.probs[self.label])

    @property
    def said(self) -> str:
        """What to tell the user: the class name, or ``unknown``."""
        return UNKNOWN if self.unknown else self.class_name

    @property
    def end_s(self) -> float:
        return self.end / self.sample_rate


@dataclass(frozen=True)
class SoundEvent:
    """One sound, classified once in a window placed on it as training placed clips.

    ``start``/``end`` bound the sound, ``prediction`` is that of its window (whose own
    ``start``/``end`` say where the window was).
    """

    index: int
    start: int
    end: int
    sample_rate: int
    prediction: WindowPrediction

    @property
    def label(self) -> int:
        return self.prediction.label

    @property
    def class_name(self) -> str:
        return self.prediction.class_name

    @property
    def said(self) -> str:
        return self.prediction.said

    @property
    def confidence(self) -> float:
        return self.prediction.confidence

    @property
    def start_s(self) -> float:
        return self.start / self.sample_rate

    @property
    def end_s(self) -> float:
        return self.end / self.sample_rate


def latency_summary(latencies_ms) -> tuple[float, float]:
    """Median and 95th percentile (NaN when empty)."""
    if len(latencies_ms) == 0:
        return math.nan, math.nan
    arr = np.asarray(latencies_ms, dtype=np.float64)
    return float(np.median(arr)), float(np.percentile(arr, 95))


# ---------------------------------------------------------------------------------- classifier
class SlidingWindowClassifier:
    """Classifies the window ending at every hop of a stream, and every sound in it.

    Parameters
    ----------
    predictor
        Has ``predict_waveform(y, sr)``, ``feature_config`` and ``class_names``.
    sample_rate : int
        Rate of the samples fed in; windows are resampled to the model's rate when it differs.
    window_s : float or None
        Window length; ``None`` = the model's clip duration.
    hop_s : float
        Time between window ends.
    skip_stale : bool
        When several hop windows are due at once (inference fell behind), classify the newest.
    sounds : bool
        Also find sounds with a :class:`LevelGate` and classify each once (:class:`SoundEvent`).
    keep_waveform, keep_features : bool
        Attach the window's waveform / features to each prediction (for display).
    gate : dict or None
        :class:`LevelGate` options.
    """

    def __init__(
        self,
        predictor,
        sample_rate: int,
        window_s: float | None = None,
        hop_s: float = 0.25,
        *,
        skip_stale: bool = True,
        sounds: bool = True,
        keep_waveform: bool = False,
        keep_features: bool = False,
        gate: dict | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ):
        cfg = predictor.feature_config
        self.predictor = predictor
        self.threshold = float(threshold)  # under it a prediction is "unknown" (may be changed)
        self.model_rate = int(cfg.sample_rate)
        self.align = str(getattr(cfg, "align", "centre"))
        self.sample_rate = int(sample_rate)
        self.window_s = float(window_s if window_s else cfg.duration)
        if not self.window_s > 0:
            raise ValueError("window_s must be positive")
        if not hop_s > 0:
            raise ValueError("hop_s must be positive")
        self.hop_s = float(hop_s)
        self.window = max(1, int(round(self.window_s * self.sample_rate)))
        self.hop = max(1, int(round(self.hop_s * self.sample_rate)))
        self.skip_stale = skip_stale
        self.keep_waveform = keep_waveform
        self.keep_features = keep_features
        self.class_names = list(predictor.class_names)
        self.buffer = RingBuffer(self.window * 2 + max(self.hop, self.sample_rate) * 4)
        gate_opts = {"max_s": self.window_s, **(gate or {})}
        self.gate = LevelGate(self.sample_rate, **gate_opts) if sounds else None
        self.next_end = self.hop
        self.count = 0
        self.sound_count = 0
        self.dropped = 0
        self.latencies: list[float] = []
        self.sound_latencies: list[float] = []
        self._sounds: deque[tuple[int, int, int]] = deque()  # (start, end, window end)
        self._arrivals: deque[tuple[int, float]] = deque()  # (total after block, arrival)
        # a model that reads frames as its time axis gets only each hop's new frames
        self.stream = FrameStream(predictor) if streams(predictor) else None

    # ----- input
    def feed(self, samples: np.ndarray, arrived: float | None = None) -> None:
        """Append samples (that arrived at ``arrived``, a ``time.perf_counter`` value)."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.buffer.write(samples)
        self._arrivals.append(
            (self.buffer.total, time.perf_counter() if arrived is None else arrived)
        )
        if self.gate is not None:
            for start, end in self.gate.feed(samples):
                self._sounds.append((start, end, self._window_end_for(start, end)))

    def _window_end_for(self, start: int, end: int) -> int:
        """Where a sound's window ends: placed on the sound as training placed a clip."""
        preroll = int(0.03 * self.sample_rate)  # a clip's own lead-in before the sound
        if self.align == "pad":
            return max(start - preroll, 0) + self.window
        if self.align == "trim":
            return end + preroll
        return (start + end) // 2 + self.window // 2

    def _arrival_of(self, end: int) -> float:
        for total, arrived in self._arrivals:
            if total >= end:
                return arrived
        return self._arrivals[-1][1]

    def _prune_arrivals(self) -> None:
        keep_from = min([self.next_end] + [w for _, _, w in self._sounds])
        while len(self._arrivals) > 1 and self._arrivals[1][0] <= keep_from:
            self._arrivals.popleft()

    # ----- output
    def predict_due(self) -> list[WindowPrediction | SoundEvent]:
        """Classify the windows and sounds completed by the samples fed so far, in time order."""
        total = self.buffer.total
        ends = []
        while self.next_end <= total:
            ends.append(self.next_end)
            self.next_end += self.hop
        skipped = sum(1 for e in ends if not self.buffer.holds(e, self.window))
        ends = [e for e in ends if self.buffer.holds(e, self.window)]
        if self.skip_stale and len(ends) > 1:
            skipped += len(ends) - 1
            ends = ends[-1:]
        self.dropped += skipped
        work: list[tuple[int, tuple]] = [(e, ("window", e)) for e in ends]
        while self._sounds and self._sounds[0][2] <= total:
            start, end, w_end = self._sounds.popleft()
            if self.buffer.holds(w_end, self.window):
                work.append((w_end, ("sound", start, end)))
        out: list[WindowPrediction | SoundEvent] = []
        for w_end, job in sorted(work, key=lambda j: j[0]):
            arrived = self._arrival_of(w_end)
            if job[0] == "window":
                out.append(self._predict(w_end, arrived, skipped, self.count, stream=True))
                self.latencies.append(out[-1].latency_ms)
                self.count += 1
                skipped = 0
            else:
                pred = self._predict(w_end, arrived, 0, self.sound_count)
                self.sound_latencies.append(pred.latency_ms)
                out.append(SoundEvent(self.sound_count, job[1], job[2], self.sample_rate, pred))
                self.sound_count += 1
        self._prune_arrivals()
        return out

    def push(self, samples: np.ndarray, arrived: float | None = None) -> list:
        """``feed`` then ``predict_due``."""
        self.feed(samples, arrived)
        return self.predict_due()

    def _predict(self, end, arrived, skipped, index, stream=False) -> WindowPrediction:
        y = self.buffer.read(end, self.window)
        if self.sample_rate != self.model_rate:
            y = resample(y, self.sample_rate, self.model_rate)
        if stream and self.stream is not None:
            pred = self.stream.step(y, end * self.model_rate / self.sample_rate)
        else:
            pred = self.predictor.predict_waveform(y, self.model_rate)
        latency = (time.perf_counter() - arrived) * 1000.0
        return self._wrap(pred, y, index, end - self.window, end, latency, skipped)

    def _wrap(self, pred, y, index, start, end, latency, skipped) -> WindowPrediction:
        features = seen = None
        if self.keep_features or self.keep_waveform:
            from engine.audio.features import compute_features, prepare_clip

            fc = self.predictor.feature_config
            seen = prepare_clip(y, self.model_rate, fc)  # the clip as the model saw it
            if self.keep_features:
                features = compute_features(seen, fc)
        # engine.train.checkpoint.Prediction: ``index`` is the class number, ``label`` its name
        label = int(pred.index) if hasattr(pred, "index") else int(pred.label)
        spikes = getattr(pred, "output_spikes", None)
        probs = np.asarray(pred.probs, dtype=np.float32)
        quiet = self._quiet(y)
        top = float(probs[label]) if 0 <= label < len(probs) else 0.0
        return WindowPrediction(
            index=index,
            start=start,
            end=end,
            sample_rate=self.sample_rate,
            label=label,
            class_name=(
                self.class_names[label] if 0 <= label < len(self.class_names) else str(label)
            ),
            probs=probs,
            output_spikes=None if spikes is None else np.asarray(spikes, dtype=np.float32),
            latency_ms=latency,
            rms=float(np.sqrt(np.mean(np.square(y)))) if len(y) else 0.0,
            dropped=skipped,
            quiet=quiet,
            waveform=seen if self.keep_waveform else None,
            features=features,
            unknown=quiet or top < self.threshold,
        )

    def _quiet(self, y: np.ndarray) -> bool:
        """True when the loudest 10-ms frame of ``y`` stays under the gate's threshold."""
        if self.gate is None or len(y) == 0:
            return False
        frame = max(1, int(round(0.01 * self.model_rate)))
        n = max(1, len(y) // frame)
        frames = np.resize(y, n * frame).reshape(n, frame)
        loudest = 10 * np.log10(
            np.max(np.mean(np.square(frames, dtype=np.float64), axis=1)) + 1e-12
        )
        return bool(loudest <= self.gate.threshold_db)

    def classify_clip(self, y: np.ndarray) -> WindowPrediction:
        """One prediction of a whole short clip (at ``sample_rate``), placed as in training."""
        y = np.asarray(y, dtype=np.float32).reshape(-1)
        if self.sample_rate != self.model_rate:
            y = resample(y, self.sample_rate, self.model_rate)
        t0 = time.perf_counter()
        pred = self.predictor.predict_waveform(y, self.model_rate)
        latency = (time.perf_counter() - t0) * 1000.0
        n = int(round(len(y) * self.sample_rate / self.model_rate))
        return self._wrap(pred, y, 0, 0, n, latency, 0)

    def warm_up(self) -> None:
        """One unmeasured prediction of silence: a model's first call pays one-off set-up costs
        (hundreds of ms in PyTorch) that must not count as the first window's latency."""
        y = np.zeros(int(round(self.window_s * self.model_rate)), np.float32)
        self.predictor.predict_waveform(y, self.model_rate)

    def summary(self) -> tuple[float, float]:
        """Median and p95 latency (ms) of the hop windows so far."""
        return latency_summary(self.latencies)
