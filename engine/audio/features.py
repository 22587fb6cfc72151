"""MFCC and log-mel features in NumPy, equal to librosa's within float32 rounding, without numba.

``librosa.feature.mfcc`` compiles numba kernels on its first call (16-18 s on the reference
machine); this module computes the same thing with plain NumPy so the first MFCC in a fresh
process takes milliseconds. The steps are librosa's defaults:

1. centred STFT: the clip is padded with ``n_fft // 2`` zeros on both sides, framed every
   ``hop_length`` samples, multiplied by a periodic Hann window of ``n_fft`` samples and
   transformed with a real FFT; power spectrum ``|X|^2``;
2. mel filter bank (Slaney mel scale and area normalisation, as ``librosa.filters.mel``; or the
   HTK scale ``m = 2595 log10(1 + f / 700)`` when ``htk=True``);
3. ``power_to_db`` with ``ref=1``, ``amin=1e-10`` and ``top_db`` below the clip's maximum;
4. for MFCC, an orthonormal DCT-II over the mel axis, keeping the first ``n_mfcc`` rows.

``tests/engine/test_features.py`` checks the result against ``librosa.feature.mfcc`` and
``librosa.feature.melspectrogram``. The data-set level API (``build_feature_set``,
``load_feature_set``, ``FeatureSet``) lives in ``engine.data.feature_set`` and is re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np

from engine.errors import ConfigError

KINDS = ("mfcc", "logmel", "image", "spikes")  # image/spikes: the data are the input
NORMALISE = ("none", "per_clip", "per_coeff", "minmax")
#: bump when the numbers a config produces change, so on-disk caches are not reused
FEATURE_VERSION = 1
#: upper bounds of the integer settings: beyond them one clip's arrays would not fit in memory,
#: and no real audio front end needs more (384 kHz is the highest common audio rate)
_INT_LIMITS = {
    "sample_rate": 384_000,
    "n_mfcc": 512,
    "n_fft": 65_536,
    "hop_length": 65_536,
    "n_mels": 512,
}
#: longest clip in seconds (the whole clip is held in memory and featurised at once)
MAX_DURATION_S = 600.0
#: most STFT frame values (frames x n_fft) per clip: 2**28 float64 values are 2 GiB
MAX_STFT_VALUES = 2**28


@dataclass(frozen=True)
class FeatureConfig:
    """How a clip becomes a feature matrix ``[n_features, frames]``.

    Defaults suit the Free Spoken Digit Dataset (8 kHz speech, clips 0.14-2.3 s, 99% under
    0.93 s): 1 s centred clips, 32 ms windows every 16 ms (63 frames), 40 mel bands, 20 MFCCs.

    Attributes
    ----------
    kind : {"mfcc", "logmel", "image", "spikes"}
        ``"image"`` is for image data sets (MNIST): the pixels are the features; ``"spikes"``
        for spike-train data sets (SHD/SSC): the binned spikes are.
    sample_rate : int
        Clips are resampled to this rate (Hz).
    duration : float
        Clip length in seconds after padding/cropping (``align``).
    align : {"pad", "trim", "centre"}
        Where a clip sits in ``duration`` (see ``engine.audio.load.load_audio``).
    trim_silence : bool
        Cut leading/trailing silence (and a microphone's noise floor) before fixing the
        length, so a sound sits in the clip where ``align`` puts it wherever it was recorded.
    n_mfcc, n_fft, hop_length, n_mels : int
        MFCC count, FFT/window length and hop (samples), mel bands.
    fmin, fmax : float, float or None
        Mel filter bank range in Hz; ``fmax=None`` means ``sample_rate / 2``.
    htk : bool
        HTK mel scale instead of Slaney's (librosa's default).
    top_db : float or None
        Floor of the dB scale below the clip's peak (librosa default 80); ``None`` for no floor.
    normalise : {"none", "per_clip", "per_coeff", "minmax"}
        Per-clip scaling after the transform: zero mean / unit variance over the whole matrix,
        per row (coefficient) over time, or min-max to [0, 1] (suits rate/latency encoders).
    """

    kind: str = "mfcc"
    sample_rate: int = 8000
    duration: float = 1.0
    align: str = "centre"
    trim_silence: bool = False
    n_mfcc: int = 20
    n_fft: int = 256
    hop_length: int = 128
    n_mels: int = 40
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = False
    top_db: float | None = 80.0
    normalise: str = "per_clip"

    def __post_init__(self) -> None:
        def bad(name: str, why: str):
            raise ConfigError(f"feature config: {name}={getattr(self, name)!r} {why}")

        if self.kind not in KINDS:
            bad("kind", f"is not one of {', '.join(KINDS)}")
        if self.normalise not in NORMALISE:
            bad("normalise", f"is not one of {', '.join(NORMALISE)}")
        if self.align not in ("pad", "trim", "centre"):
            bad("align", "is not one of pad, trim, centre")
        for name, top in _INT_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                bad(name, "must be a positive integer")
            if value > top:
                bad(name, f"is too large (at most {top})")
        if not _is_number(self.duration) or not 0 < self.duration <= MAX_DURATION_S:
            bad("duration", f"must be a number of seconds in (0, {MAX_DURATION_S:g}]")
        if not _is_number(self.fmin) or self.fmin < 0:
            bad("fmin", "must be >= 0 Hz")
        nyquist = self.sample_rate / 2
        if self.fmax is not None and (not _is_number(self.fmax) or not 0 < self.fmax <= nyquist):
            bad("fmax", f"must be in (0, {nyquist:g}] Hz (half the sample rate) or None")
        if self.fmin >= (self.fmax if self.fmax is not None else nyquist):
            bad("fmin", "must be below fmax")
        if self.top_db is not None and (not _is_number(self.top_db) or self.top_db <= 0):
            bad("top_db", "must be a positive number of dB or None")
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            bad("n_mfcc", f"cannot exceed n_mels ({self.n_mels})")
        if self.kind != "image" and self.n_samples() < 1:
            bad("duration", "is shorter than one sample")
        if self.kind != "image" and self.frames() * self.n_fft > MAX_STFT_VALUES:
            bad(
                "hop_length",
                f"gives {self.frames()} frames of {self.n_fft} samples, over "
                f"{MAX_STFT_VALUES} values per clip: raise hop_length or shorten duration",
            )

    # ----- shapes
    def n_samples(self) -> int:
        """Samples per clip (``duration * sample_rate``)."""
        return int(round(self.duration * self.sample_rate))

    def frames(self) -> int:
        """Frames per clip (centred STFT: ``1 + n_samples // hop_length``)."""
        return 1 + self.n_samples() // self.hop_length

    @property
    def n_features(self) -> int:
        """Rows of the feature matrix (``n_mfcc`` or ``n_mels``)."""
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def shape(self) -> tuple[int, int]:
        """``(n_features, frames)`` of one clip's features (audio kinds)."""
        return self.n_features, self.frames()

    # ----- (de)serialisation
    def to_dict(self) -> dict:
        """JSON/TOML-safe dict (``fmax``/``top_db`` may be ``None``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> FeatureConfig:
        """Build from a dict; unknown keys are ignored with a warning, bad values raise ConfigError."""
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            warnings.warn(f"feature config: ignoring unknown keys {unknown}", stacklevel=2)
        kwargs = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            value = d[f.name]
            if f.name in ("sample_rate", "n_mfcc", "n_fft", "hop_length", "n_mels"):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
            elif f.name in ("duration", "fmin", "fmax", "top_db") and isinstance(value, int):
                value = None if value is None else float(value)
            elif f.name in ("trim_silence", "htk") and not isinstance(value, bool):
                raise ConfigError(f"feature config: {f.name}={value!r} must be true or false")
            elif f.name in ("fmax", "top_db") and value in ("", "none", "None"):
                value = None
            kwargs[f.name] = value
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"feature config: {exc}") from None

    def cache_key(self) -> str:
        """Short hash of everything that changes the numbers (for the feature cache)."""
        text = json.dumps({"v": FEATURE_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """One line for logs and tooltips."""
        if self.kind == "image":
            return "image pixels in [0, 1]"
        if self.kind == "spikes":
            return "binned input spikes (700 channels, time last)"
        name = f"{self.n_mfcc} MFCC" if self.kind == "mfcc" else f"{self.n_mels}-band log-mel"
        return (
            f"{name}, {self.sample_rate} Hz, {self.duration:g} s ({self.align}), "
            f"n_fft {self.n_fft}, hop {self.hop_length}, {self.n_mels} mels, "
            f"{self.frames()} frames, normalise {self.normalise}"
        )


def _is_number(value) -> bool:
    return (
        isinstance(value, (int, float, np.number))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


# ----------------------------------------------------------------------------- mel filter bank
def hz_to_mel(freq, htk: bool = False):
    """Hz to mel: HTK ``2595 log10(1 + f/700)`` or Slaney (linear below 1 kHz, log above)."""
    freq = np.asanyarray(freq, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + freq / 700.0)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    mels = freq / f_sp
    return np.where(
        freq >= min_log_hz,
        min_log_mel + np.log(np.maximum(freq, min_log_hz) / min_log_hz) / logstep,
        mels,
    )


def mel_to_hz(mels, htk: bool = False):
    """Inverse of ``hz_to_mel``."""
    mels = np.asanyarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    return np.where(
        mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels
    )


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
) -> np.ndarray:
    """Triangular mel filters ``[n_mels, 1 + n_fft // 2]`` with Slaney area normalisation.

    Same construction as ``librosa.filters.mel(norm="slaney")``.
    """
    fmax = float(sample_rate) / 2 if fmax is None else float(fmax)
    fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix ``[n_out, n_in]`` (rows = ``scipy.fft.dct(norm="ortho")``)."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis.astype(np.float32)


def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window (``scipy.signal.get_window("hann", n)``, librosa's default)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


# ----------------------------------------------------------------------------- transforms
def power_spectrogram(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Centred power STFT of ``y`` ``[..., n]`` -> ``[..., 1 + n_fft // 2, frames]`` float32.

    Zero padding of ``n_fft // 2`` on both sides and a periodic Hann window, as
    ``librosa.stft(center=True, pad_mode="constant")``.
    """
    y = np.asarray(y, dtype=np.float32)
    pad = n_fft // 2
    widths = [(0, 0)] * (y.ndim - 1) + [(pad, pad)]
    padded = np.pad(y, widths)
    if padded.shape[-1] < n_fft:  # a clip shorter than half a window: librosa pads the same way
        widths = [(0, 0)] * (y.ndim - 1) + [(0, n_fft - padded.shape[-1])]
        padded = np.pad(padded, widths)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[..., ::hop_length, :]
    spec = np.fft.rfft(frames * hann_window(n_fft), axis=-1)
    power = spec.real**2 + spec.imag**2
    return np.swapaxes(power, -1, -2).astype(np.float32, copy=False)


def power_to_db(s: np.ndarray, top_db: float | None = 80.0, amin: float = 1e-10) -> np.ndarray:
    """``10 log10(max(s, amin))`` floored at ``top_db`` below each clip's maximum (ref = 1).

    ``s`` is ``[..., F, T]``; the floor is per clip (over the last two axes), as librosa does
    for a single clip.
    """
    log_spec = 10.0 * np.log10(np.maximum(s, amin))
    if top_db is not None:
        peak = log_spec.max(axis=(-2, -1), keepdims=True)
        log_spec = np.maximum(log_spec, peak - top_db)
    return log_spec.astype(np.float32, copy=False)


def _normalise(x: np.ndarray, how: str) -> np.ndarray:
    if how == "none":
        return x
    if how == "per_clip":
        mean = x.mean(axis=(-2, -1), keepdims=True)
        std = x.std(axis=(-2, -1), keepdims=True)
        return (x - mean) / np.maximum(std, 1e-6)
    if how == "per_coeff":
        mean = x.mean(axis=-1, keepdims=True)
        std = x.std(axis=-1, keepdims=True)
        return (x - mean) / np.maximum(std, 1e-6)
    lo = x.min(axis=(-2, -1), keepdims=True)
    hi = x.max(axis=(-2, -1), keepdims=True)
    return (x - lo) / np.maximum(hi - lo, 1e-6)


def compute_features_batch(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Features of several equal-length clips ``[B, n]`` -> float32 ``[B, n_features, frames]``.

    Vectorised over the batch, so featurising a data set in chunks costs one FFT call per chunk.
    """
    if cfg.kind == "image":
        raise ConfigError("feature config: kind='image' has no audio transform (use image data)")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 2:
        raise ValueError(f"expected a batch of clips [B, n], got shape {y.shape}")
    power = power_spectrogram(y, cfg.n_fft, cfg.hop_length)
    fb = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax, cfg.htk)
    mel = np.matmul(fb, power)
    out = power_to_db(mel, cfg.top_db)
    if cfg.kind == "mfcc":
        out = np.matmul(dct_matrix(cfg.n_mfcc, cfg.n_mels), out)
    return np.ascontiguousarray(_normalise(out, cfg.normalise), dtype=np.float32)


def compute_features(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Features of ONE clip ``[n]`` (already at ``cfg.sample_rate``) -> float32 ``[F, T]``.

    The clip is used as given; ``features_from_file`` (or ``prepare_clip``) fixes its length to
    ``cfg.duration`` first, which keeps ``T == cfg.frames()``.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected one mono clip [n], got shape {y.shape}")
    return compute_features_batch(y[None, :], cfg)[0]


def prepare_clip(y: np.ndarray, sr: int, cfg: FeatureConfig) -> np.ndarray:
    """Resample, trim silence and fix the length of a waveform as ``cfg`` asks."""
    from engine.audio.load import TRIM_MARGIN_DB, fit_length, resample, trim_silence_edges

    y = resample(np.asarray(y, dtype=np.float32), int(sr), cfg.sample_rate)
    if cfg.trim_silence:
        y = trim_silence_edges(y, margin_db=TRIM_MARGIN_DB)
    return fit_length(y, cfg.n_samples(), cfg.align)


def features_from_file(path: str | os.PathLike, cfg: FeatureConfig) -> np.ndarray:
    """``load_audio`` at ``cfg``'s rate, duration and alignment, then ``compute_features``."""
    from engine.audio.load import load_audio

    y, _sr = load_audio(
        path,
        sample_rate=cfg.sample_rate,
        duration=cfg.duration,
        align=cfg.align,
        trim_silence=cfg.trim_silence,
    )
    return compute_features(y, cfg)
