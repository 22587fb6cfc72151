"""Seeded data augmentation for the training split: waveform changes and SpecAugment masks.

Waveform augmentations (time shift, gain, white noise at an SNR, background noise mixed from a
folder) make extra copies of each training clip when a feature set is built (they are cached
like any feature). SpecAugment (time and frequency masks) is applied on the fly to training
batches by the training loop. Every switch is off at 0 / None, and every function takes its
random generator explicitly, so a seed reproduces the same copies.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np

from engine.errors import ConfigError, DataError


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations are on, and how strong.

    Attributes
    ----------
    time_shift_s : float
        Shift each copy by up to +/- this many seconds (zeros fill the gap).
    gain_db : float
        Scale each copy by a gain drawn uniformly in +/- this many dB.
    noise_snr_db : float or None
        Add white noise at this signal-to-noise ratio (dB).
    background_dir : str or None
        Mix a random excerpt of a random audio file from this folder...
    background_snr_db : float
        ...at this SNR (dB).
    copies : int
        Augmented copies per training clip (0 = no waveform augmentation).
    spec_time_mask, spec_freq_mask : int
        Largest SpecAugment mask width in frames / feature rows (0 = off).
    spec_masks : int
        Masks of each kind per example.
    """

    time_shift_s: float = 0.0
    gain_db: float = 0.0
    noise_snr_db: float | None = None
    background_dir: str | None = None
    background_snr_db: float = 10.0
    copies: int = 0
    spec_time_mask: int = 0
    spec_freq_mask: int = 0
    spec_masks: int = 1

    def __post_init__(self) -> None:
        def bad(name, why):
            raise ConfigError(f"augment: {name}={getattr(self, name)!r} {why}")

        for name in ("time_shift_s", "gain_db", "background_snr_db"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < -200:
                bad(name, "must be a finite number")
        if self.time_shift_s < 0 or self.gain_db < 0:
            bad("time_shift_s" if self.time_shift_s < 0 else "gain_db", "must be >= 0")
        if self.noise_snr_db is not None and (
            not isinstance(self.noise_snr_db, (int, float)) or not math.isfinite(self.noise_snr_db)
        ):
            bad("noise_snr_db", "must be a number of dB or None")
        for name in ("copies", "spec_time_mask", "spec_freq_mask", "spec_masks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                bad(name, "must be an integer >= 0")
        if self.copies > 100:
            bad("copies", "is more than 100 copies per clip")
        if self.background_dir is not None:
            # os.path.isdir takes ints as file descriptors: check the type before asking it
            if not isinstance(self.background_dir, (str, os.PathLike)):
                bad("background_dir", "must be a folder path (text) or None")
            if not os.path.isdir(self.background_dir):
                bad("background_dir", "is not a folder")

    @property
    def waveform_enabled(self) -> bool:
        """True when copies will be made and at least one waveform change is on."""
        return self.copies > 0 and (
            self.time_shift_s > 0
            or self.gain_db > 0
            or self.noise_snr_db is not None
            or self.background_dir is not None
        )

    @property
    def spec_enabled(self) -> bool:
        return self.spec_masks > 0 and (self.spec_time_mask > 0 or self.spec_freq_mask > 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> AugmentConfig:
        """Build from a dict; unknown keys are ignored with a warning."""
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            warnings.warn(f"augment: ignoring unknown keys {unknown}", stacklevel=2)
        kwargs = {k: v for k, v in d.items() if k in names}
        for key in ("noise_snr_db", "background_dir"):
            if kwargs.get(key) in ("", "none", "None"):
                kwargs[key] = None
        return cls(**kwargs)

    def waveform_key(self) -> str:
        """Hash of what changes augmented waveforms (background files included), for caching."""
        d = {
            k: v
            for k, v in self.to_dict().items()
            if k in ("time_shift_s", "gain_db", "noise_snr_db", "background_snr_db")
        }
        if self.background_dir:
            d["background"] = [
                (os.path.basename(p), os.path.getsize(p), os.stat(p).st_mtime_ns)
                for p in background_files(self.background_dir)
            ]
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def background_files(folder: str) -> list[str]:
    """Audio files in ``folder`` (recursively), sorted, for background mixing."""
    from engine.audio.load import is_audio_name

    out = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        out += [os.path.join(root, n) for n in sorted(names) if is_audio_name(n)]
    return out


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0


def time_shift(y: np.ndarray, shift: int) -> np.ndarray:
    """Shift by ``shift`` samples (positive = later), filling with zeros; same length."""
    out = np.zeros_like(y)
    if shift >= 0:
        out[shift:] = y[: len(y) - shift] if shift < len(y) else y[:0]
    else:
        out[: len(y) + shift] = y[-shift:]
    return out


def mix_at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``y + a * noise`` with ``a`` such that ``rms(y) / rms(a * noise)`` is ``snr_db``."""
    signal, level = _rms(y), _rms(noise)
    if signal == 0 or level == 0:
        return y.copy()
    scale = signal / (level * 10 ** (snr_db / 20))
    return (y + scale * noise).astype(np.float32)


class WaveformAugmenter:
    """Applies an ``AugmentConfig``'s waveform changes at one sample rate.

    Background files are loaded on first use and kept by this object (not globally).
    """

    def __init__(self, cfg: AugmentConfig, sample_rate: int):
        self.cfg = cfg
        self.sample_rate = int(sample_rate)
        self._backgrounds: list[np.ndarray] | None = None

    def _background(self) -> list[np.ndarray]:
        if self._backgrounds is None:
            from engine.audio.load import load_audio

            files = background_files(self.cfg.background_dir)
            if not files:
                raise DataError(f"{self.cfg.background_dir}: no audio files for background noise")
            loaded = []
            for path in files:
                try:
                    loaded.append(load_audio(path, sample_rate=self.sample_rate)[0])
                except DataError as exc:
                    warnings.warn(f"background noise: skipping {exc}", stacklevel=2)
            if not loaded:
                raise DataError(f"{self.cfg.background_dir}: no readable background audio")
            self._backgrounds = loaded
        return self._backgrounds

    def __call__(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One augmented copy of ``y`` (same length); every draw comes from ``rng``."""
        cfg = self.cfg
        out = np.asarray(y, dtype=np.float32).copy()
        if cfg.time_shift_s > 0:
            limit = int(round(cfg.time_shift_s * self.sample_rate))
            out = time_shift(out, int(rng.integers(-limit, limit + 1)))
        if cfg.gain_db > 0:
            out = out * np.float32(10 ** (rng.uniform(-cfg.gain_db, cfg.gain_db) / 20))
        if cfg.background_dir is not None:
            bank = self._background()
            noise = bank[int(rng.integers(len(bank)))]
            if len(noise) < len(out):
                noise = np.tile(noise, int(np.ceil(len(out) / max(len(noise), 1))))
            start = int(rng.integers(0, len(noise) - len(out) + 1))
            out = mix_at_snr(out, noise[start : start + len(out)], cfg.background_snr_db)
        if cfg.noise_snr_db is not None:
            out = mix_at_snr(
                out, rng.standard_normal(len(out)).astype(np.float32), cfg.noise_snr_db
            )
        return out.astype(np.float32)


def copy_rng(seed: int, path: str, copy: int) -> np.random.Generator:
    """The generator for augmented copy ``copy`` of the file ``path``: stable across runs."""
    digest = int(hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12], 16)
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(copy), digest])


def spec_augment(batch, cfg: AugmentConfig, generator=None):
    """SpecAugment time and frequency masks on a batch ``[B, 1, F, T]`` (torch tensor).

    Each example gets ``cfg.spec_masks`` masks per axis, each of a width drawn in
    ``[0, spec_*_mask]`` at a random position; masked cells are set to 0 (the mean of a
    normalised feature). Returns a new tensor; the input is not changed. ``generator`` is a
    ``torch.Generator`` (on the batch's device) for reproducible masks.
    """
    import torch

    if not cfg.spec_enabled:
        return batch
    if batch.dim() != 4:
        raise ValueError(f"spec_augment expects [B, 1, F, T], got {tuple(batch.shape)}")
    b, _c, f, t = batch.shape
    dev = batch.device
    keep = torch.ones(b, f, t, dtype=torch.bool, device=dev)
    for size, width, axis in ((t, cfg.spec_time_mask, 2), (f, cfg.spec_freq_mask, 1)):
        if width <= 0:
            continue
        width = min(width, size)
        pos = torch.arange(size, device=dev)
        for _ in range(cfg.spec_masks):
            w = torch.randint(0, width + 1, (b,), generator=generator, device=dev)
            start = (torch.rand(b, generator=generator, device=dev) * (size - w + 1)).long()
            mask = (pos[None, :] >= start[:, None]) & (pos[None, :] < (start + w)[:, None])
            keep &= ~(mask[:, None, :] if axis == 2 else mask[:, :, None])
    return batch * keep[:, None].to(batch.dtype)
