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


def write_shd(path: Path, n: int = 40, n_classes: int = 4, seed: int = 0, keys=None) -> Path:
    """An HDF5 file in the published SHD/SSC layout: ragged ``spikes/times`` (s) and
    ``spikes/units`` (0-699), ``labels``, ``extra/keys``. Class ``c`` fires channels
    ``100c..100c+49`` in its own time window, so a model can learn it."""
    import h5py

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    times, units = [], []
    for c in labels:
        k = int(rng.integers(30, 80))
        units.append((100 * c + rng.integers(0, 50, k)).astype(np.uint16))
        times.append(np.sort(0.1 * c + rng.uniform(0, 0.4, k)).astype(np.float32))
    with h5py.File(path, "w") as f:
        g = f.create_group("spikes")
        g.create_dataset("times", data=times, dtype=h5py.vlen_dtype(np.float32))
        g.create_dataset("units", data=units, dtype=h5py.vlen_dtype(np.uint16))
        f.create_dataset("labels", data=labels.astype(np.uint16))
        names = keys or [f"word{c}" for c in range(n_classes)]
        f.create_group("extra").create_dataset("keys", data=[s.encode() for s in names])
    return path


def esc50_zip(folder: Path) -> Path:
    """``ESC-50-master.zip`` in the published layout: ``audio/{fold}-{src}-{take}-{target}.wav``
    and ``meta/esc50.csv`` (filename,fold,target,category,esc10,src_file,take)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    out = folder / "ESC-50-master.zip"
    with zipfile.ZipFile(out, "w") as zf:
        for fold in range(1, 6):
            for target, category in ((0, "dog"), (1, "rooster")):
                name = f"{fold}-{100 + fold}-A-{target}.wav"
                wav = folder / name
                sf.write(wav, tone(300 + 300 * target, 0.2, 16000, seed=fold), 16000)
                zf.write(wav, f"ESC-50-master/audio/{name}")
                rows.append(f"{name},{fold},{target},{category},False,{100 + fold},A")
        zf.writestr("ESC-50-master/meta/esc50.csv", "\n".join(rows) + "\n")
    return out


def speechcommands_tar(folder: Path) -> Path:
    """``speech_commands_v0.02.tar.gz`` as published: no top folder, word folders, lists."""
    import tarfile

    root = folder / "sc"
    for w, word in enumerate(("no", "yes")):
        (root / word).mkdir(parents=True, exist_ok=True)
        for s in ("aa11", "bb22", "cc33"):
            sf.write(root / word / f"{s}_nohash_0.wav", tone(300 + 300 * w, 1.0, 16000), 16000)
    (root / "_background_noise_").mkdir(exist_ok=True)
    sf.write(root / "_background_noise_" / "hum.wav", tone(50, 2.0, 16000), 16000)
    (root / "validation_list.txt").write_text("no/bb22_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("no/cc33_nohash_0.wav\nyes/cc33_nohash_0.wav\n")
    out = folder / "speech_commands_v0.02.tar.gz"
    with tarfile.open(out, "w:gz") as tf:
        for p in sorted(root.rglob("*")):
            tf.add(p, str(p.relative_to(root)), recursive=False)
    return out
