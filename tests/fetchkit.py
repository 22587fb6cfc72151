"""Small archives in the published layouts, for the fetch tests (engine, CLI and GUI)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

FSDD_ZIP = "free-spoken-digit-dataset.zip"  # the catalog's archive name for fsdd


def tone(freq: float, seconds: float = 0.25, sr: int = 8000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(
        np.float32
    )


def fsdd_zip(folder: Path, digits: int = 3, per_digit: int = 8, seconds: float = 0.25) -> Path:
    """A GitHub-style FSDD archive: ``repo-commit/recordings/{digit}_{speaker}_{index}.wav``
    (one tone per digit, so a model can learn it); index 0-4 test, the rest train."""
    folder.mkdir(parents=True, exist_ok=True)
    wavs = folder / "wavs"
    wavs.mkdir(exist_ok=True)
    out = folder / FSDD_ZIP
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("free-spoken-digit-dataset-26eb9aa/README.md", "FSDD\n")
        for d in range(digits):
            for i in range(per_digit):
                name = f"{d}_george_{i}.wav"
                sf.write(wavs / name, tone(300 + 400 * d, seconds, seed=d * 100 + i), 8000)
                zf.write(wavs / name, f"free-spoken-digit-dataset-26eb9aa/recordings/{name}")
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
