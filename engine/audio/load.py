"""Audio files to mono float32 waveforms: any rate, channel count, bit depth; WAV/FLAC/OGG/MP3.

Decoding goes through libsndfile (``soundfile``), which reads WAV, FLAC, OGG/Vorbis, Opus and
MP3; anything else (M4A, AAC, WebM...) falls back to an ``ffmpeg`` subprocess when ffmpeg is
installed. Resampling uses a polyphase filter (``scipy.signal.resample_poly``), imported only when
a file's rate differs from the one asked for. Nothing here touches librosa or numba, so the first
call in a fresh process is fast.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from math import gcd

import numpy as np

from engine.errors import DataError

#: file name suffixes treated as audio by folder data sets
AUDIO_EXTENSIONS = (
    ".wav",
    ".wave",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aif",
    ".aiff",
    ".au",
    ".m4a",
    ".aac",
    ".webm",
    ".wma",
)

ALIGNS = ("pad", "trim", "centre")
_ALIGN_ALIASES = {"center": "centre", "start": "pad", "end": "trim"}


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: native rate, channels, length."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def is_audio_name(path: str) -> bool:
    """True when the file name has an audio suffix (``.wav``, ``.mp3``...)."""
    return os.path.splitext(path)[1].lower() in AUDIO_EXTENSIONS


def _wav_truncation(path: str, size: int) -> str | None:
    """A reason when a RIFF/WAVE file's ``data`` chunk claims more bytes than the file holds.

    libsndfile silently shortens such files, which hides a broken download or copy.
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return "truncated WAV file (no 'data' chunk)"
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            pos += 8
            if cid == b"data":
                if csize in (0, 0xFFFFFFFF):  # streamed WAV: size left unset by the writer
                    return None
                if pos + csize > size:
                    return (
                        f"truncated WAV file (data chunk declares {csize} bytes, "
                        f"file holds {size - pos})"
                    )
                return None
            pos += csize + (csize & 1)
            fh.seek(pos)


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read a file's header without decoding it.

    Raises
    ------
    DataError
        ``"<path>: <reason>"`` for a missing, empty, truncated or undecodable file.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not an audio file")
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot open ({exc.strerror or exc})") from None
    if size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    try:
        reason = _wav_truncation(path, size)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if reason:
        raise DataError(f"{path}: {reason}")
    import soundfile as sf

    try:
        info = sf.info(path)
    except Exception as exc:  # libsndfile raises its own error types (and RuntimeError)
        if _ffmpeg() is None:
            raise DataError(f"{path}: not a readable audio file ({_short(exc)})") from None
        rate, channels, frames = _ffprobe(path)
        return AudioInfo(path, rate, channels, frames, "ffmpeg")
    if info.samplerate <= 0 or info.channels <= 0:
        raise DataError(f"{path}: audio header is invalid (rate {info.samplerate})")
    frames = int(info.frames)
    if frames > _MAX_FRAMES_PER_BYTE * size:
        # a damaged header (FLAC's STREAMINFO, say) can claim days of audio in a few kB
        frames = _count_frames(path)
    if frames <= 0:
        raise DataError(f"{path}: holds no audio samples")
    return AudioInfo(path, int(info.samplerate), int(info.channels), frames, info.format)


#: no codec stores more samples per byte of file than this (FLAC's constant subframes of silence
#: reach a few thousand); a header claiming more is not believed
_MAX_FRAMES_PER_BYTE = 8192


def _count_frames(path: str) -> int:
    """Frames actually decodable from ``path``, for a header whose count is implausible.

    libsndfile trusts the header (it seeks past the real end and fails), so ffmpeg decodes it.
    """
    if _ffmpeg() is None:
        raise DataError(f"{path}: damaged header (claims far more samples than the file holds)")
    return len(_ffmpeg_decode(path)[0])


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    duration: float | None = None,
    align: str = "pad",
    trim_silence: bool = False,
) -> tuple[np.ndarray, int]:
    """Load an audio file as a mono float32 waveform.

    Parameters
    ----------
    path : path-like
        WAV, FLAC, OGG, Opus, MP3 (libsndfile), or anything ffmpeg decodes.
    sample_rate : int or None
        Target rate in Hz; ``None`` keeps the file's own rate.
    duration : float or None
        Fix the length to ``duration`` seconds (see ``fit_length``); ``None`` keeps it.
    align : {"pad", "trim", "centre"}
        How ``duration`` is reached: ``"pad"`` keeps the start (zeros appended, or the end cut);
        ``"trim"`` keeps the end (zeros prepended, or the start cut); ``"centre"`` keeps the
        middle (pads or crops both sides equally).
    trim_silence : bool
        Cut leading and trailing silence before fixing length: frames 60 dB below the loudest
        or within ``TRIM_MARGIN_DB`` of the clip's noise floor (``trim_silence_edges``).

    Returns
    -------
    (np.ndarray, int)
        float32 1-D waveform in [-1, 1] (channels averaged) and its sample rate.

    Raises
    ------
    DataError
        ``"<path>: <reason>"`` when the file cannot be read.
    """
    path = os.fspath(path)
    align = _check_align(align)
    if sample_rate is not None and int(sample_rate) <= 0:
        raise DataError(f"{path}: sample rate must be positive, got {sample_rate}")
    y, sr = _decode(path)
    if sample_rate is not None and int(sample_rate) != sr:
        y = resample(y, sr, int(sample_rate))
        sr = int(sample_rate)
    if trim_silence:
        y = trim_silence_edges(y, margin_db=TRIM_MARGIN_DB)
    if duration is not None:
        y = fit_length(y, int(round(float(duration) * sr)), align)
    return np.ascontiguousarray(y, dtype=np.float32), sr


def _check_align(align: str) -> str:
    align = _ALIGN_ALIASES.get(align, align)
    if align not in ALIGNS:
        raise DataError(f"align must be one of {', '.join(ALIGNS)}, got {align!r}")
    return align


def _decode(path: str) -> tuple[np.ndarray, int]:
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not an audio file")
    if not os.path.isfile(path):
        raise DataError(f"{path}: is not a regular file (a device or pipe?)")
    try:
        size = os.path.getsize(path)
        reason = _wav_truncation(path, size) if size else None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    if reason:
        raise DataError(f"{path}: {reason}")
    import soundfile as sf

    try:
        with sf.SoundFile(path) as fh:
            if fh.frames > _MAX_FRAMES_PER_BYTE * size:
                # a damaged header: reading would allocate for every sample it claims
                raise DataError(f"{path}: damaged header (claims {fh.frames} samples)")
            data, sr = fh.read(dtype="float32", always_2d=True), fh.samplerate
    except Exception as exc:  # libsndfile: unknown format, bad header, unsupported codec
        if _ffmpeg() is None:
            msg = str(exc) if isinstance(exc, DataError) else None
            raise DataError(msg or f"{path}: not a readable audio file ({_short(exc)})") from None
        return _ffmpeg_decode(path)
    if data.shape[0] == 0:
        raise DataError(f"{path}: holds no audio samples")
    if not np.all(np.isfinite(data)):
        raise DataError(f"{path}: contains NaN/inf samples")
    y = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float64)
    return _checked(path, y), int(sr)


#: float files whose peak exceeds this were written on another scale (integer range, say)
_FLOAT_PEAK_LIMIT = 4.0


def _checked(path: str, y: np.ndarray) -> np.ndarray:
    """``y`` as finite float32 in [-1, 1]-ish: NaN/inf rejected, an off-scale float file rescaled.

    Float WAV/FLAC allow any value; a file written in integer range (peaks of 32767) or with
    huge values (1e30) would otherwise overflow float32 in the RMS of ``trim_silence_edges``
    and give inf/NaN features. Mild overshoot (up to ``_FLOAT_PEAK_LIMIT``) is kept as is.
    """
    if len(y) == 0:
        raise DataError(f"{path}: holds no audio samples")
    if not np.all(np.isfinite(y)):
        raise DataError(f"{path}: contains NaN/inf samples")
    peak = float(np.max(np.abs(y)))
    if peak > _FLOAT_PEAK_LIMIT:
        y = np.asarray(y, dtype=np.float64) / peak
    return np.ascontiguousarray(y, dtype=np.float32)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # libsndfile repeats the path in its message; the caller already names the file
    return text.split(": ", 1)[1] if text.startswith("Error opening") and ": " in text else text


def _ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


def _ffprobe(path: str) -> tuple[int, int, int]:
    probe = shutil.which("ffprobe")
    if probe is None:
        raise DataError(f"{path}: not a format libsndfile reads, and ffprobe is not installed")
    argv = [
        probe,
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_entries",
        "stream=sample_rate,channels,duration",
        "-of",
        "default=noprint_wrappers=1",
        path,
    ]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(f"{path}: ffprobe failed ({exc})") from None
    fields = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    try:
        rate = int(fields["sample_rate"])
        channels = int(fields.get("channels", 1))
    except (KeyError, ValueError):
        msg = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "no audio stream"
        raise DataError(f"{path}: not a readable audio file ({msg})") from None
    try:
        frames = int(float(fields.get("duration", "0")) * rate)
    except ValueError:
        frames = 0
    if frames <= 0:
        raise DataError(f"{path}: holds no audio samples")
    return rate, channels, frames


def _ffmpeg_decode(path: str) -> tuple[np.ndarray, int]:
    rate, _channels, _frames = _ffprobe(path)
    argv = [_ffmpeg() or "ffmpeg", "-nostdin", "-v", "error", "-i", path]
    argv += ["-vn", "-f", "f32le", "-acodec", "pcm_f32le", "-ac", "1", "-ar", str(rate), "-"]
    try:
        out = subprocess.run(argv, capture_output=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(f"{path}: ffmpeg failed ({exc})") from None
    if out.returncode != 0 or not out.stdout:
        msg = out.stderr.decode(errors="replace").strip().splitlines()
        raise DataError(f"{path}: ffmpeg could not decode it ({msg[-1] if msg else 'no output'})")
    y = np.frombuffer(out.stdout[: len(out.stdout) // 4 * 4], dtype="<f4").astype(np.float32)
    return _checked(path, y), rate


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling (Kaiser-windowed FIR) from ``orig_sr`` to ``target_sr``."""
    if orig_sr == target_sr:
        return np.asarray(y, dtype=np.float32)
    from scipy.signal import resample_poly

    g = gcd(int(orig_sr), int(target_sr))
    out = resample_poly(np.asarray(y, dtype=np.float64), target_sr // g, orig_sr // g)
    return out.astype(np.float32)


def fit_length(y: np.ndarray, n: int, align: str = "pad") -> np.ndarray:
    """Pad with zeros or crop ``y`` to exactly ``n`` samples (``align`` as in ``load_audio``)."""
    align = _check_align(align)
    n = max(int(n), 0)
    length = len(y)
    if length == n:
        return y
    if length > n:
        start = {"pad": 0, "trim": length - n, "centre": (length - n) // 2}[align]
        return y[start : start + n]
    out = np.zeros(n, dtype=np.float32)
    start = {"pad": 0, "trim": n - length, "centre": (n - length) // 2}[align]
    out[start : start + length] = y
    return out


#: a trimmed clip keeps the frames this far above its noise floor (the live level gate's margin)
TRIM_MARGIN_DB = 12.0
#: ... but never cuts a frame within this of the loudest one
TRIM_KEEP_DB = 30.0


def trim_silence_edges(
    y: np.ndarray,
    top_db: float = 60.0,
    frame_length: int = 512,
    hop_length: int = 128,
    margin_db: float | None = None,
) -> np.ndarray:
    """Cut leading and trailing frames quieter than ``top_db`` below the loudest frame.

    Same rule as ``librosa.effects.trim`` (RMS per frame against the maximum); an all-silent
    clip comes back unchanged rather than empty. With ``margin_db`` a frame must also rise that
    far above the clip's noise floor (its 10th-percentile frame), as the live level gate asks
    of a sound: a microphone's hiss 40 dB under the word is cut too, while frames within
    ``TRIM_KEEP_DB`` of the loudest always stay.
    """
    y = np.asarray(y, dtype=np.float32)
    if len(y) == 0:
        return y
    pad = frame_length // 2
    padded = np.pad(y, (pad, pad))
    n_frames = 1 + max(len(padded) - frame_length, 0) // hop_length
    idx = np.arange(frame_length)[None, :] + hop_length * np.arange(n_frames)[:, None]
    # float64: squares of large samples overflow float32
    frames = padded[np.minimum(idx, len(padded) - 1)].astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    if not np.all(np.isfinite(rms)):
        return y
    peak = rms.max()
    if peak <= 0:
        return y
    level = 20 * np.log10(np.maximum(rms, 1e-10) / peak)
    cut = -float(top_db)
    if margin_db is not None:
        floor = float(np.percentile(level, 10))
        cut = min(-TRIM_KEEP_DB, max(cut, floor + float(margin_db)))
    loud = np.flatnonzero(level > cut)
    start = int(loud[0] * hop_length)
    end = min(len(y), int((loud[-1] + 1) * hop_length))
    return y[start:end] if end > start else y
