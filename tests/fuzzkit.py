"""Shared pieces of the fuzzing tests (``tests/engine/test_fuzz_*.py``): the hypothesis profile,
one-line error checks, unique file names and the per-module tally of inputs tried.

On the import path through ``pythonpath`` in pyproject's pytest section; the ``tally`` and
``files`` fixtures built on it live in ``tests/engine/conftest.py``.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, settings

from engine.errors import SnnError

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def fuzz(n: int) -> settings:
    """The FUZZ profile with ``n`` examples."""
    return settings(FUZZ, max_examples=n)


def report(counts: Counter, name: str) -> None:
    """Print the inputs tried per reader and outcome; add them to ``$SNN_FUZZ_TALLY`` if set."""
    per_reader = Counter()
    for (reader, _outcome), n in counts.items():
        per_reader[reader] += n
    lines = [f"fuzz {name}: {sum(counts.values())} inputs"]
    lines += [f"  {r}: {n} ({_outcomes(counts, r)})" for r, n in sorted(per_reader.items())]
    print("\n" + "\n".join(lines))
    target = os.environ.get("SNN_FUZZ_TALLY")
    if target:
        old = json.loads(Path(target).read_text()) if Path(target).is_file() else {}
        old[name] = {f"{r}|{o}": n for (r, o), n in sorted(counts.items())}
        Path(target).write_text(json.dumps(old, indent=1))


def _outcomes(counts: Counter, reader: str) -> str:
    return ", ".join(f"{o} {n}" for (r, o), n in sorted(counts.items()) if r == reader)


def one_line(exc: BaseException, *names: str | os.PathLike) -> str:
    """Assert ``exc`` is a one-line SnnError naming one of ``names`` (a path or its basename)
    when names are given."""
    assert isinstance(exc, SnnError), f"{type(exc).__name__}: {exc}"
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, repr(text)
    assert not names or any(os.path.basename(os.fspath(n)) in text for n in names), (text, names)
    return text


class Files:
    """Unique file names in one module-wide folder (hypothesis examples share it)."""

    def __init__(self, root: Path):
        self.root = root
        self.n = 0

    def path(self, name: str) -> Path:
        self.n += 1
        folder = self.root / f"case{self.n:05d}"
        folder.mkdir()
        return folder / name

    def write(self, name: str, data: bytes) -> Path:
        p = self.path(name)
        p.write_bytes(data)
        return p


SR = 8000


def wav_bytes(y: np.ndarray, sr: int = SR, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, subtype=subtype, format=fmt)
    return buf.getvalue()


def tone(n: int = SR // 4, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    y = 0.3 * np.sin(2 * np.pi * 440 * t)[:, None] + 0.01 * rng.standard_normal((n, channels))
    return y.astype(np.float32)[:, 0] if channels == 1 else y.astype(np.float32)
