"""Killed mid-run: SIGKILL a real ``snn-explorer`` subprocess part-way, rerun it, lose nothing.

- training: killed after its first epoch checkpoint; ``--resume`` ends with exactly the metrics of
  an uninterrupted run of the same seed;
- feature extraction: killed midway; no cache entry is damaged, and the rerun reads the finished
  clips from the cache and computes each of the others once, giving the same features as an
  uninterrupted extraction.

The download's own kill test lives with the downloader:
``tests/engine/test_download.py::test_killed_cli_download_resumes_exactly_once``.

The data are generated WAVs (no shared data needed); everything runs on the CPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.atomic import is_partial
from engine.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[3]


def make_tones(folder: Path, classes=(300, 700, 1500), per_class=20, seconds=0.5, sr=8000):
    """A folder data set: one sub-folder per class, noisy tones of that class's pitch."""
    rng = np.random.default_rng(0)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    for c, f0 in enumerate(classes):
        (folder / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            f = f0 * (1 + 0.05 * rng.standard_normal())
            y = 0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(n)
            sf.write(folder / f"c{c}" / f"{i:03d}.wav", y.astype(np.float32), sr, subtype="PCM_16")
    return folder


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


def env_with(cache: Path) -> dict:
    env = dict(os.environ, SNN_EXPLORER_CACHE=str(cache), PYTHONUNBUFFERED="1")
    env.setdefault("OMP_NUM_THREADS", "1")  # the same reductions in every run: same numbers
    return env


def run_ok(cmd: list[str], env: dict, timeout: float = 240) -> str:
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def kill_when(cmd: list[str], env: dict, ready, timeout: float = 180) -> None:
    """Start ``cmd``, SIGKILL it as soon as ``ready()`` is true; fail if it ended first."""
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before the kill: {proc.stderr.read().decode()[-800:]}")
            if time.monotonic() > deadline:
                pytest.fail("the run never reached the point to kill it")
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before the kill"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


# ----------------------------------------------------------------------------- training
CONFIG = """\
data = "folder:{data}"
model = "fc_snn"
steps = 5
epochs = 4
batch = 8
seed = 1

[model_options]
hidden = 32
"""
SAME = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "synops", "firing_rates")


@pytest.mark.slow
def test_killed_training_resumes_to_the_metrics_of_an_uninterrupted_run(tmp_path):
    data = make_tones(tmp_path / "tones", per_class=16)
    config = tmp_path / "run.toml"
    config.write_text(CONFIG.format(data=data))
    env = env_with(tmp_path / "cache")

    whole = tmp_path / "whole"
    run_ok(cli("train", "--config", str(config), "--out", str(whole), "--quiet"), env)

    cut = tmp_path / "cut"
    first_epoch = cut / "checkpoint.pt"
    kill_when(
        cli("train", "--config", str(config), "--out", str(cut), "--quiet"),
        env,
        first_epoch.exists,
    )
    # the last checkpoint is whole; metrics.json (written just after it) may not exist yet
    before = len(load_checkpoint(first_epoch).metrics["history"])
    assert 1 <= before < 4, "the kill did not land mid-run"
    if (cut / "metrics.json").exists():
        assert json.loads((cut / "metrics.json").read_text())["status"] == "running"

    out = run_ok(cli("train", "--out", str(cut), "--resume", "--quiet"), env)
    assert "completed: 4 epochs" in out

    a = json.loads((whole / "metrics.json").read_text())
    b = json.loads((cut / "metrics.json").read_text())
    assert b["status"] == a["status"] == "completed"
    assert len(b["history"]) == len(a["history"]) == 4
    for ea, eb in zip(a["history"], b["history"]):
        assert {k: ea[k] for k in SAME} == {k: eb[k] for k in SAME}, ea["epoch"]
    assert b["test"] == a["test"]
    assert (b["best_epoch"], b["best_val_acc"]) == (a["best_epoch"], a["best_val_acc"])

    # every epoch is in the log (the one cut short may appear twice); a temporary file may only
    # be left by a kill that lands inside a write, and it is never read as a run file
    epochs = [
        json.loads(line).get("epoch")
        for line in (cut / "events.jsonl").read_text().splitlines()
        if json.loads(line).get("event") == "EpochEnd"
    ]
    assert sorted(set(epochs)) == [1, 2, 3, 4], epochs
    assert len(epochs) <= 4 + (4 - before), epochs  # at most the epoch cut short is repeated
    names = sorted(p.name for p in cut.iterdir() if not p.name.startswith("."))
    expected = ["best.pt", "checkpoint.pt", "config.toml", "events.jsonl", "log.txt"]
    expected += ["metrics.csv", "metrics.json", "steps.csv", "traces.npz", "usage.json"]
    assert names == expected, names  # what `train` writes (the run tables, traces, usage too)
    hidden = [p.name for p in cut.iterdir() if p.name.startswith(".")]
    assert not hidden, hidden  # a temporary left by the kill is removed when the run resumes


# ----------------------------------------------------------------------------- features
def npy_entries(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*.npy") if "sets" not in p.parts]


@pytest.mark.slow
def test_killed_feature_extraction_finishes_every_clip_once(tmp_path):
    from engine.audio.feature_cache import load_cached
    from engine.audio.features import FeatureConfig
    from engine.data.feature_set import load_feature_set

    # 2-s clips at 16 kHz: each must be resampled, so the run lasts long enough to cut
    data = make_tones(tmp_path / "long", classes=(400, 900), per_class=120, seconds=2, sr=16000)
    cache = tmp_path / "cache"
    out = tmp_path / "features.npz"
    cmd = cli("features", "--data", f"folder:{data}", "--cache-dir", str(cache))
    cmd += ["--out", str(out), "--jobs", "1", "--quiet"]
    env = env_with(tmp_path / "unused-cache")

    kill_when(cmd, env, lambda: len(npy_entries(cache)) >= 24)
    entries = npy_entries(cache)
    assert 24 <= len(entries) < 240, "the kill did not land midway"
    shape = (20, 63)
    for p in entries:  # every entry that carries a final name is whole
        assert load_cached(str(p), shape) is not None, f"{p} is damaged"
    assert not out.exists() and not list(tmp_path.glob("features.npz*"))

    text = run_ok(cmd, env)
    cached = int(text.split(" from the cache")[0].rsplit(" ", 1)[1])
    assert cached == len(entries), text  # finished clips were read, not computed again
    assert len(npy_entries(cache)) == 240
    # a kill inside a write can leave only a temporary ``.NAME.<pid>.part``, never read as an entry
    leftovers = [p for p in cache.rglob("*") if p.is_file() and p.suffix != ".npy"]
    assert all(is_partial(p.name) for p in leftovers), leftovers

    got = np.load(out)
    assert got["x"].shape == (240, 1, 20, 63)
    reference = load_feature_set(f"folder:{data}", FeatureConfig(), use_cache=False, jobs=1)
    assert np.array_equal(got["x"], reference.x)  # each clip once, in order, same numbers
    assert np.array_equal(got["y"], reference.y)
    assert sorted(reference.paths) == sorted(str(p) for p in data.rglob("*.wav"))
