"""Capture devices and a capture stream (PortAudio through ``sounddevice``).

PortAudio's callback thread only copies each block, with its arrival time, onto a queue:
nothing slow ever runs there. A missing, refused or vanished capture device raises
:class:`engine.errors.DeviceError` with a one-line message.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from engine.errors import DeviceError

#: how long a started stream may deliver nothing before the device counts as gone
STALL_SECONDS = 2.0
#: the same before the first block: some sound servers start an idle source slowly
START_SECONDS = 5.0


def load_sounddevice():
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
    sd = load_sounddevice()
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
    sd = load_sounddevice()
    sd._terminate()
    sd._initialize()


NO_DEVICE = (
    "no audio capture device found: connect a microphone, then refresh the device list "
    "(--list-devices on the command line)"
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
    sd = load_sounddevice()
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
        self._heard = False  # a block has arrived since start()

    # PortAudio's thread: copy and hand over, nothing else
    def _callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self.overflows += 1
        self._queue.put((indata[:, 0].copy(), time.perf_counter()))

    def start(self) -> AudioCapture:
        sd = load_sounddevice()
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
            self._heard = True
        elif self._stream is not None and (
            self._ended.is_set()
            or now - self._last_block > (STALL_SECONDS if self._heard else START_SECONDS)
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
