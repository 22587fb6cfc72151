"""Record a sound data set: N-second clips as WAV files, one sub-folder per class.

The folder this writes is a ``folder:DIR`` data set (``engine.data.specs.open_source``), so it
trains directly. Class names become folder names through :func:`safe_label`, which can never
point outside the data set folder (no separators, no ``..``, no hidden or reserved names).
Every file is written to a temporary name in its class folder and renamed into place, so a
crash never leaves a half-written clip that a training run would read.
"""

from __future__ import annotations

import os
import re
import threading
import time
import unicodedata
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.atomic import atomic_path
from engine.audio.load import is_audio_name, load_audio
from engine.errors import ConfigError, DataError

#: the conventional class name for "nothing in particular" (Teachable Machine, Speech Commands)
BACKGROUND = "background"
#: default recording rate: enough for speech and most sounds, small files
RECORD_RATE = 16000
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10))}
_RESERVED |= {f"lpt{i}" for i in range(1, 10)}


def safe_label(name: str) -> str:
    """A class name as a folder name that stays inside the data set folder.

    Letters (any script), digits, ``-``, ``_``, ``.`` and spaces are kept (spaces become ``_``);
    anything else, path separators included, becomes ``_``. Leading dots are dropped (no hidden
    folders, no ``..``). Raises ConfigError when nothing usable is left.
    """
    text = unicodedata.normalize("NFC", str(name)).strip()
    text = "".join(c if (c.isalnum() or c in "-_.") else "_" for c in text.replace(" ", "_"))
    text = re.sub(r"_+", "_", text).lstrip(".").strip("_.")[:64].strip("_.")
    if not text or text.lower() in _RESERVED:
        raise ConfigError(
            f"class name {name!r}: use letters, digits, '-', '_' or spaces (it names a folder)"
        )
    return text


def class_dir(out_dir: str | os.PathLike, label: str, create: bool = False) -> Path:
    """``out_dir/safe_label(label)``, checked to lie inside ``out_dir``."""
    root = Path(out_dir).resolve()
    path = (root / safe_label(label)).resolve()
    if path.parent != root:  # a symlinked class folder could still lead elsewhere
        raise ConfigError(f"class folder {path} is not inside the data set folder {root}")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def write_wav_atomic(path: str | os.PathLike, y: np.ndarray, sample_rate: int) -> Path:
    """Write mono 16-bit PCM WAV to a temporary file beside ``path``, then rename it into place."""
    import soundfile as sf

    path = Path(path)
    y = np.clip(np.asarray(y, dtype=np.float32).reshape(-1), -1.0, 1.0)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        sf.write(fh, y, int(sample_rate), subtype="PCM_16", format="WAV")
    return path


def list_clips(out_dir: str | os.PathLike, label: str) -> list[Path]:
    """Audio files in a class folder, by name."""
    folder = class_dir(out_dir, label)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and is_audio_name(p.name) and p.name[0] != "."
    )


def class_counts(out_dir: str | os.PathLike) -> dict[str, int]:
    """Clips per class folder (hidden folders and stray files are ignored), by class name."""
    root = Path(out_dir)
    if not root.is_dir():
        return {}
    counts = {}
    for sub in sorted(root.iterdir()):
        if sub.is_dir() and not sub.name.startswith("."):
            counts[sub.name] = sum(
                1
                for p in sub.iterdir()
                if p.is_file() and is_audio_name(p.name) and p.name[0] != "."
            )
    return counts


def next_clip_path(out_dir: str | os.PathLike, label: str) -> Path:
    """The next free ``CLASS/CLASS_0001.wav`` (numbers never reused while files remain)."""
    folder = class_dir(out_dir, label, create=True)
    stem = folder.name
    used = [
        int(m.group(1))
        for p in folder.iterdir()
        if (m := re.fullmatch(re.escape(stem) + r"_(\d+)\.wav", p.name))
    ]
    return folder / f"{stem}_{max(used, default=0) + 1:04d}.wav"


def save_clip(out_dir: str | os.PathLike, label: str, y: np.ndarray, sample_rate: int) -> Path:
    """Save one clip into its class folder under the next free name; returns the path."""
    if len(y) == 0:
        raise DataError(f"{label}: an empty recording cannot be saved")
    path = next_clip_path(out_dir, label)
    return write_wav_atomic(path, y, sample_rate)


def delete_clip(out_dir: str | os.PathLike, path: str | os.PathLike) -> None:
    """Delete one recorded clip; refuses anything that is not an audio file inside ``out_dir``."""
    p = Path(path)
    if not _inside(Path(out_dir), p) or not is_audio_name(p.name) or p.is_symlink():
        raise DataError(f"{path}: not a clip of the data set in {out_dir}; not deleted")
    if not p.is_file():
        raise DataError(f"{path}: no such clip")
    p.unlink()


def delete_class(out_dir: str | os.PathLike, label: str) -> int:
    """Delete a class folder's clips, and the folder when nothing else is left; returns count."""
    clips = list_clips(out_dir, label)
    for p in clips:
        p.unlink()
    folder = class_dir(out_dir, label)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    return len(clips)


def split_into_clips(y: np.ndarray, sample_rate: int, seconds: float, hop_s=None) -> list:
    """Cut a long recording into ``seconds``-long clips every ``hop_s`` (default: no overlap)."""
    n = int(round(seconds * sample_rate))
    hop = int(round((hop_s or seconds) * sample_rate))
    if n <= 0 or hop <= 0:
        raise ConfigError("clip length and hop must be positive")
    return [y[i : i + n] for i in range(0, len(y) - n + 1, hop)]


def add_background_from_file(
    out_dir: str | os.PathLike,
    path: str | os.PathLike,
    seconds: float = 1.0,
    label: str = BACKGROUND,
    sample_rate: int = RECORD_RATE,
    max_clips: int = 200,
) -> list[Path]:
    """Background-noise class helper: cut a long noise recording (a file) into clips of the class
    ``label``; returns the new paths."""
    y, sr = load_audio(path, sample_rate=sample_rate)
    clips = split_into_clips(y, sr, seconds)[:max_clips]
    if not clips:
        raise DataError(f"{path}: shorter than one {seconds:g}-s clip")
    return [save_clip(out_dir, label, c, sr) for c in clips]


# ------------------------------------------------------------------------- recording from a device
@dataclass(frozen=True)
class RecordLevel:
    """Recording progress, about every 50 ms."""

    clip: int  # 0-based number of the clip being recorded
    elapsed_s: float
    seconds: float
    rms: float
    peak: float
    samples: np.ndarray  # the sound since the last event (for a meter or a waveform)
    sample_rate: int


@dataclass(frozen=True)
class RecordWaiting:
    """The pause before the next clip (so a person can get ready)."""

    clip: int
    remaining_s: float


@dataclass(frozen=True)
class ClipSaved:
    clip: int
    path: str
    label: str
    seconds: float
    sample_rate: int
    rms: float
    peak: float


@dataclass(frozen=True)
class RecordResult:
    label: str
    paths: tuple[str, ...]
    counts: dict
    stopped: bool


def record_clips(
    out_dir: str | os.PathLike,
    label: str,
    seconds: float = 1.0,
    count: int = 1,
    *,
    device: int | str | None = None,
    sample_rate: int = RECORD_RATE,
    pause_s: float = 0.0,
    split: bool = False,
    stop: threading.Event | None = None,
    capture=None,
) -> Generator[RecordLevel | RecordWaiting | ClipSaved, None, RecordResult]:
    """Record ``count`` clips of exactly ``seconds`` into ``out_dir/label/``.

    ``pause_s`` waits between clips (sound in the pause is dropped). ``split`` records one take of
    ``count * seconds`` and cuts it (the background-noise helper: no gaps, no pauses). Stopping
    keeps the clips saved so far and drops the unfinished one. ``capture`` (an unstarted
    ``engine.live.listen.AudioCapture``) replaces the one built from ``device`` and ``sample_rate``.
    Raises DeviceError when there is no capture device or it goes away.
    """
    from engine.live.capture import AudioCapture

    if not seconds > 0 or count < 1:
        raise ConfigError("record: seconds must be positive and count at least 1")
    folder = class_dir(out_dir, label, create=True)
    name = folder.name
    cap = capture or AudioCapture(device, sample_rate)
    rate = cap.sample_rate
    per_clip = int(round(seconds * rate))
    takes = [(0, per_clip * count)] if split else [(i, per_clip) for i in range(count)]
    saved: list[str] = []
    stopped = False

    def halted() -> bool:
        return stop is not None and stop.is_set()

    with cap:
        for clip, n in takes:
            if pause_s > 0 and clip > 0:
                end = time.monotonic() + pause_s
                while (left := end - time.monotonic()) > 0 and not halted():
                    yield RecordWaiting(clip, left)
                    cap.read(timeout=min(0.05, left))  # drop what is heard in the pause
            cap.read(timeout=0.0)  # start clean: nothing from before this clip
            parts, have = [], 0
            while have < n and not halted():
                blocks = [b for b, _ in cap.read(timeout=0.05)]
                if not blocks:
                    continue
                chunk = np.concatenate(blocks)[: n - have]
                parts.append(chunk)
                have += len(chunk)
                yield RecordLevel(
                    clip,
                    have / rate,
                    n / rate,
                    float(np.sqrt(np.mean(np.square(chunk)))),
                    float(np.max(np.abs(chunk))),
                    chunk,
                    rate,
                )
            if have < n:
                stopped = True
                break
            y = np.concatenate(parts)
            pieces = split_into_clips(y, rate, seconds) if split else [y]
            for k, piece in enumerate(pieces):
                path = save_clip(out_dir, name, piece, rate)
                saved.append(str(path))
                yield ClipSaved(
                    clip + k,
                    str(path),
                    name,
                    len(piece) / rate,
                    rate,
                    float(np.sqrt(np.mean(np.square(piece)))),
                    float(np.max(np.abs(piece))),
                )
    return RecordResult(name, tuple(saved), class_counts(out_dir), stopped or halted())


@dataclass(frozen=True)
class PlaybackProgress:
    position_s: float
    duration_s: float


def play_clip(
    path: str | os.PathLike,
    *,
    device: int | str | None = None,
    stop: threading.Event | None = None,
) -> Generator[PlaybackProgress, None, None]:
    """Play an audio file on an output device, in 50-ms blocks, until its end or ``stop``."""
    from engine.errors import DeviceError
    from engine.live.capture import load_sounddevice

    sd = load_sounddevice()
    y, sr = load_audio(path)
    block = max(1, sr // 20)
    try:
        stream = sd.OutputStream(samplerate=sr, channels=1, dtype="float32", device=device)
    except (sd.PortAudioError, ValueError) as exc:
        raise DeviceError(
            f"cannot play {Path(path).name}: no usable output device ({exc})"
        ) from None
    with stream:
        for start in range(0, len(y), block):
            if stop is not None and stop.is_set():
                break
            stream.write(np.ascontiguousarray(y[start : start + block, None]))
            yield PlaybackProgress(min(len(y), start + block) / sr, len(y) / sr)
