"""Live audio: capture devices, a capture stream, and the ``listen`` generator.

From the microphone to a prediction:

- :class:`AudioCapture` opens a ``sounddevice.InputStream``; PortAudio's callback thread only
  copies each block, with its arrival time, onto a queue (nothing slow ever runs there).
- :class:`engine.live_window.SlidingWindowClassifier` (re-exported here) classifies the window
  ending at every hop, and every sound once (see that module).
- :func:`listen` ties them together as a generator of frozen events (:class:`LiveStarted`,
  :class:`AudioBlock`, :class:`WindowPrediction`, :class:`SoundEvent`, :class:`LiveStopped`)
  that the CLI and the GUI (on a worker thread) both drive; :func:`classify_waveform` replays a
  recorded waveform through the same classifier without a device.

A missing, refused or vanished capture device raises :class:`engine.errors.DeviceError` with a
one-line message.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from engine.audio import resample
from engine.errors import DeviceError
from engine.live_window import (
    RingBuffer,
    SlidingWindowClassifier,
    SoundEvent,
    WindowPrediction,
    latency_summary,
)

__all__ = [
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

#: how long a started stream may deliver nothing before the device counts as gone
STALL_SECONDS = 2.0


def _sounddevice():
    """``sounddevice``, imported on first use: it needs the PortAudio library at import time."""
    try:
        import sounddevice as sd
    except OSError as exc:  # libportaudio2 is missing
        raise DeviceError(
            f"audio input is unavailable: {exc} (install PortAudio: apt-get install libportaudio2)"
        ) from None
    return sd


# ---------------------------------------------------------------------------------- devices
@dataclass(frozen=True)
class InputDevice:
    """One capture device as PortAudio lists it."""

    index: int
    name: str
    host_api: str
    channels: int
    default_rate: float
    is_default: bool

    @property
    def label(self) -> str:
        """Text for a device picker: ``"3: USB microphone (ALSA)"``."""
        return f"{self.index}: {self.name} ({self.host_api})"


def list_input_devices() -> list[InputDevice]:
    """Every device with at least one input channel; ``[]`` when there is none."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        apis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot list audio devices: {exc}") from None
    if default_in is None or default_in < 0:
        # PortAudio's own default, when the user set none
        try:
            default_in = sd.query_devices(kind="input")["index"]
        except (sd.PortAudioError, ValueError, KeyError):
            default_in = -1
    out = []
    for d in devices:
        if d["max_input_channels"] <= 0:
            continue
        out.append(
            InputDevice(
                index=int(d["index"]),
                name=str(d["name"]),
                host_api=str(apis[d["hostapi"]]["name"]),
                channels=int(d["max_input_channels"]),
                default_rate=float(d["default_samplerate"]),
                is_default=int(d["index"]) == default_in,
            )
        )
    return out


def refresh_devices() -> None:
    """Re-read PortAudio's device list (it is read once, at start): for a device plugged in since.

    Do not call it while a stream is open.
    """
    sd = _sounddevice()
    sd._terminate()
    sd._initialize()


NO_DEVICE = (
    "no audio capture device found: connect a microphone (then refresh the device list), "
    "or open an audio file to classify it"
)


def resolve_input_device(device: int | str | None = None) -> InputDevice:
    """The device to capture from: an index, a name substring, or ``None`` for the default."""
    devices = list_input_devices()
    if not devices:
        raise DeviceError(NO_DEVICE)
    if device is None or device == "":
        return next((d for d in devices if d.is_default), devices[0])
    if isinstance(device, str) and device.strip().lstrip("-").isdigit():
        device = int(device)
    if isinstance(device, int):
        for d in devices:
            if d.index == device:
                return d
        raise DeviceError(
            f"audio device {device} is not a capture device; choose one of: "
            + ", ".join(d.label for d in devices)
        )
    matches = [d for d in devices if device.lower() in d.name.lower()]
    if not matches:
        raise DeviceError(
            f"no capture device named like {device!r}; choose one of: "
            + ", ".join(d.label for d in devices)
        )
    return matches[0]


def pick_sample_rate(device: InputDevice, wanted: int) -> int:
    """``wanted`` when the device accepts it, else its default rate (the windows get resampled)."""
    sd = _sounddevice()
    try:
        sd.check_input_settings(device=device.index, samplerate=wanted, channels=1, dtype="float32")
        return int(wanted)
    except (sd.PortAudioError, ValueError):
        return int(round(device.default_rate))


# ---------------------------------------------------------------------------------- capture
class AudioCapture:
    """A mono ``sounddevice.InputStream`` whose blocks arrive on a queue, with arrival times.

    Parameters
    ----------
    device : int, str or None
        Index, name substring, or ``None`` for the default capture device.
    sample_rate : int
        Rate asked of the device; when it refuses, its default rate is used
        (see ``self.sample_rate``).
    block_s : float
        Block length in seconds (20 ms keeps the latency low without waking up too often).
    """

    def __init__(self, device: int | str | None = None, sample_rate: int = 16000, block_s=0.02):
        self.device = resolve_input_device(device)
        self.sample_rate = pick_sample_rate(self.device, int(sample_rate))
        self.block = max(16, int(round(self.sample_rate * block_s)))
        self.overflows = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stream = None
        self._ended = threading.Event()
        self._last_block = 0.0

    # PortAudio's thread: copy and hand over, nothing else
    def _callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self.overflows += 1
        self._queue.put((indata[:, 0].copy(), time.perf_counter()))

    def start(self) -> AudioCapture:
        sd = _sounddevice()
        try:
            self._stream = sd.InputStream(
                samplerate=self.sample_rate,
                blocksize=self.block,
                device=self.device.index,
                channels=1,
                dtype="float32",
                latency="low",
                callback=self._callback,
                finished_callback=self._ended.set,
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._stream = None
            raise DeviceError(
                f"cannot open audio device {self.device.label} at {self.sample_rate} Hz: {exc}"
            ) from None
        self._last_block = time.perf_counter()
        return self

    def read(self, timeout: float = 0.05) -> list[tuple[np.ndarray, float]]:
        """All blocks queued so far as ``(samples, arrival perf_counter)``, waiting up to ``timeout``
        for the first. Raises DeviceError when the device stopped delivering sound."""
        blocks = []
        try:
            blocks.append(self._queue.get(timeout=timeout))
            while True:
                blocks.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        now = time.perf_counter()
        if blocks:
            self._last_block = now
        elif self._stream is not None and (
            self._ended.is_set() or now - self._last_block > STALL_SECONDS
        ):
            raise DeviceError(
                f"audio device {self.device.label} stopped delivering sound (unplugged, or its "
                "sound server stopped); choose a device and start again"
            )
        return blocks

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception:  # a vanished device may fail to close; it is gone either way
                pass

    def __enter__(self) -> AudioCapture:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


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
    (:class:`SoundEvent`); ``gate`` holds :class:`engine.live_window.LevelGate` options.
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
) -> Generator[FileOpened | WindowPrediction | SoundEvent, None, list]:
    """:func:`classify_waveform` on an audio file, as events (with waveforms and features).

    Yields :class:`FileOpened` then every prediction in time order; returns them as a list.
    Raises DataError for an unreadable file.
    """
    from engine.audio import load_audio

    rate = int(predictor.feature_config.sample_rate)
    y, _ = load_audio(path, sample_rate=rate)
    yield FileOpened(str(path), y, rate)
    events = classify_waveform(
        predictor, y, rate, window_s=window_s, hop_s=hop_s, keep_waveform=True, keep_features=True
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
    from engine.datasets import open_source, split_indices
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
