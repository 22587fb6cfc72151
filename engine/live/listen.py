"""Live audio: capture devices, a capture stream, and the ``listen`` generator.

From the microphone to a prediction:

- :class:`engine.live.capture.AudioCapture` (re-exported here) opens a ``sounddevice.InputStream``;
  PortAudio's callback thread only copies each block, with its arrival time, onto a queue.
- :class:`engine.live.window.SlidingWindowClassifier` (re-exported here) classifies the window
  ending at every hop, and every sound once (see that module).
- :func:`listen` ties them together as a generator of frozen events (:class:`LiveStarted`,
  :class:`AudioBlock`, :class:`WindowPrediction`, :class:`SoundEvent`, :class:`LiveStopped`)
  that the CLI and the GUI (on a worker thread) both drive; :func:`classify_waveform` replays a
  recorded waveform through the same classifier without a device.

A missing, refused or vanished capture device raises :class:`engine.errors.DeviceError` with a
one-line message.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from engine.audio.load import resample
from engine.live.capture import (
    NO_DEVICE,
    STALL_SECONDS,
    AudioCapture,
    InputDevice,
    list_input_devices,
    refresh_devices,
    resolve_input_device,
)
from engine.live.window import (
    RingBuffer,
    SlidingWindowClassifier,
    SoundEvent,
    WindowPrediction,
    latency_summary,
)
from engine.train.unknown import DEFAULT_THRESHOLD

__all__ = [
    "NO_DEVICE",
    "STALL_SECONDS",
    "AudioBlock",
    "AudioCapture",
    "FileOpened",
    "InputDevice",
    "LiveConfig",
    "LiveStarted",
    "LiveStopped",
    "RingBuffer",
    "SlidingWindowClassifier",
    "SoundEvent",
    "WindowPrediction",
    "classify_file",
    "classify_waveform",
    "latency_summary",
    "list_input_devices",
    "listen",
    "refresh_devices",
    "resolve_input_device",
]


# ---------------------------------------------------------------------------------- events
@dataclass(frozen=True)
class LiveStarted:
    device: str
    sample_rate: int  # capture rate
    model_rate: int
    window_s: float
    hop_s: float
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class AudioBlock:
    """Sound captured since the last block event (for a level meter and a scrolling waveform)."""

    samples: np.ndarray  # float32 at sample_rate
    sample_rate: int
    end: int  # absolute index just after the last sample
    rms: float
    peak: float


@dataclass(frozen=True)
class LiveStopped:
    reason: str  # "stopped" or "time limit"
    predictions: int
    sounds: int
    dropped: int
    median_ms: float  # window-end-to-prediction latency of the hop windows
    p95_ms: float
    overflows: int = 0


LiveEvent = LiveStarted | AudioBlock | WindowPrediction | SoundEvent | LiveStopped


# ---------------------------------------------------------------------------------- drivers
@dataclass(frozen=True)
class LiveConfig:
    """Options of :func:`listen`.

    ``window_s`` None = the model's clip duration; ``seconds`` None = until stopped;
    ``sample_rate`` None = capture at the model's rate (PortAudio or the sound server
    resamples), falling back to the device's rate. ``sounds`` also classifies each sound once
    (:class:`SoundEvent`); ``gate`` holds :class:`engine.live.window.LevelGate` options.
    """

    device: int | str | None = None
    window_s: float | None = None
    hop_s: float = 0.25
    seconds: float | None = None
    block_s: float = 0.02
    sample_rate: int | None = None
    sounds: bool = True
    audio_events: bool = True
    keep_waveform: bool = False
    keep_features: bool = False
    gate: dict | None = None
    threshold: float = DEFAULT_THRESHOLD  # under it a prediction is "unknown"

    def __post_init__(self):
        if not self.hop_s > 0:
            raise ValueError("hop must be positive")
        if self.window_s is not None and not self.window_s > 0:
            raise ValueError("window must be positive")


def _level(x: np.ndarray) -> tuple[float, float]:
    if len(x) == 0:
        return 0.0, 0.0
    return float(np.sqrt(np.mean(np.square(x)))), float(np.max(np.abs(x)))


def listen(
    predictor,
    config: LiveConfig | None = None,
    stop: threading.Event | None = None,
    *,
    capture: AudioCapture | None = None,
) -> Generator[LiveEvent, None, LiveStopped]:
    """Classify what a capture device hears, window by window and sound by sound, until stopped.

    Yields :class:`LiveStarted`, then :class:`AudioBlock` (about every 50 ms, when
    ``config.audio_events``), :class:`WindowPrediction` and :class:`SoundEvent` events, and ends
    with :class:`LiveStopped` (also its return value). ``capture`` (not started) replaces the
    one built from ``config``. Raises DeviceError when the device is missing or goes away.
    """
    cfg = config or LiveConfig()
    model_rate = int(predictor.feature_config.sample_rate)
    cap = capture or AudioCapture(cfg.device, cfg.sample_rate or model_rate, cfg.block_s)
    clf = SlidingWindowClassifier(
        predictor,
        cap.sample_rate,
        cfg.window_s,
        cfg.hop_s,
        sounds=cfg.sounds,
        keep_waveform=cfg.keep_waveform,
        keep_features=cfg.keep_features,
        gate=cfg.gate,
        threshold=cfg.threshold,
    )
    limit = None if cfg.seconds is None else int(round(cfg.seconds * cap.sample_rate))
    reason = "stopped"
    clf.warm_up()  # before the stream opens: no block waits on it
    with cap:
        yield LiveStarted(
            device=cap.device.label,
            sample_rate=cap.sample_rate,
            model_rate=model_rate,
            window_s=clf.window_s,
            hop_s=clf.hop_s,
            class_names=tuple(clf.class_names),
        )
        while not (stop is not None and stop.is_set()):
            blocks = cap.read(timeout=0.05)
            if limit is not None and blocks:
                room = limit - clf.buffer.total
                kept = []
                for samples, arrived in blocks:
                    if room <= 0:
                        break
                    kept.append((samples[:room], arrived))
                    room -= len(samples)
                blocks = kept
            for samples, arrived in blocks:
                clf.feed(samples, arrived)
            if blocks and cfg.audio_events:
                joined = np.concatenate([b for b, _ in blocks])
                rms, peak = _level(joined)
                yield AudioBlock(joined, cap.sample_rate, clf.buffer.total, rms, peak)
            yield from clf.predict_due()
            if limit is not None and clf.buffer.total >= limit:
                reason = "time limit"
                break
    median, p95 = clf.summary()
    done = LiveStopped(reason, clf.count, clf.sound_count, clf.dropped, median, p95, cap.overflows)
    yield done
    return done


def classify_waveform(
    predictor,
    y: np.ndarray,
    sample_rate: int,
    *,
    window_s: float | None = None,
    hop_s: float = 0.25,
    sounds: bool = True,
    keep_waveform: bool = False,
    keep_features: bool = False,
    gate: dict | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[WindowPrediction | SoundEvent]:
    """A recorded waveform, classified as the live classifier would classify it streamed.

    A clip no longer than the window gives one :class:`WindowPrediction` of the whole clip,
    placed in the window as training placed clips (exactly ``predictor.predict_waveform``).
    A longer one gives a prediction per hop from the first full window to the end, then (with
    ``sounds``) one :class:`SoundEvent` per sound, in time order.
    """
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    rate = int(predictor.feature_config.sample_rate)
    if sample_rate != rate:
        y = resample(y, sample_rate, rate)
    clf = SlidingWindowClassifier(
        predictor,
        rate,
        window_s,
        hop_s,
        skip_stale=False,
        sounds=sounds,
        keep_waveform=keep_waveform,
        keep_features=keep_features,
        gate=gate,
        threshold=threshold,
    )
    clf.warm_up()
    if len(y) <= clf.window:
        return [clf.classify_clip(y)]
    clf.next_end = clf.window
    tail = (-(len(y) - clf.window)) % clf.hop
    out = clf.push(np.concatenate([y, np.zeros(tail, np.float32)]))
    if sounds:
        # silence after the end closes the last sound and fills its window; no more hop windows
        clf.next_end = np.iinfo(np.int64).max
        out += clf.push(np.zeros(clf.window * 2, np.float32))
    return sorted(out, key=lambda e: e.end if isinstance(e, WindowPrediction) else e.prediction.end)


@dataclass(frozen=True)
class FileOpened:
    """An audio file read for classification (its samples at the model's rate)."""

    path: str
    samples: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def classify_file(
    predictor,
    path,
    *,
    window_s: float | None = None,
    hop_s: float = 0.25,
    stop: threading.Event | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> Generator[FileOpened | WindowPrediction | SoundEvent, None, list]:
    """:func:`classify_waveform` on an audio file, as events (with waveforms and features).

    Yields :class:`FileOpened` then every prediction in time order; returns them as a list.
    Raises DataError for an unreadable file.
    """
    from engine.audio.load import load_audio

    rate = int(predictor.feature_config.sample_rate)
    y, _ = load_audio(path, sample_rate=rate)
    yield FileOpened(str(path), y, rate)
    events = classify_waveform(
        predictor,
        y,
        rate,
        window_s=window_s,
        hop_s=hop_s,
        keep_waveform=True,
        keep_features=True,
        threshold=threshold,
    )
    for event in events:
        if stop is not None and stop.is_set():
            break
        yield event
    return events


def example_clip(predictor, seed: int = 0) -> str | None:
    """An audio file to demonstrate a model with: a test-split clip of its own data set.

    ``None`` when the checkpoint names no data set, or that data set is not on this machine.
    """
    from engine.data.specs import open_source, split_indices
    from engine.errors import SnnError

    cfg = getattr(predictor, "config", None)
    spec = getattr(cfg, "data", "")
    if not spec:
        return None
    try:
        source = open_source(spec)
        splits = split_indices(
            source, seed=cfg.seed, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction
        )
    except (SnnError, OSError):
        return None
    pool = [i for i in (splits.get("test") if len(splits.get("test", ())) else range(len(source)))]
    pool = [i for i in pool if source.items[i].path]
    if not pool or source.kind != "audio":
        return None
    rng = np.random.default_rng(seed)
    return str(source.items[pool[int(rng.integers(len(pool)))]].path)
