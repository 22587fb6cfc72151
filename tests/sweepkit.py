"""Shared by the sweep tests: scikit-learn's 8x8 digits as a real MNIST-style IDX folder, and
small BASE/SPACE files for ``snn-explorer sweep``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SPACE = """\
lr = {low = 3e-3, high = 3e-2, log = true}
beta = {low = 0.5, high = 0.95}
steps = {choices = [3, 4]}
"""


def write_digits_idx(folder: Path) -> Path:
    """The 1797 bundled digits as ``t10k-images-idx3-ubyte`` + labels (opened as ``mnist:``)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    images = np.round(d.images * (255 / 16)).astype(np.uint8)
    labels = d.target.astype(np.uint8)
    for name, arr, ndim in (
        ("t10k-images-idx3-ubyte", images, 3),
        ("t10k-labels-idx1-ubyte", labels, 1),
    ):
        head = bytes([0, 0, 8, ndim]) + np.array(arr.shape, ">u4").tobytes()
        (folder / name).write_bytes(head + arr.tobytes())
    return folder


def write_files(tmp: Path, epochs: int = 1, limit: int = 600, space: str = SPACE):
    """``(base.toml, space.toml)`` for a tiny spiking MLP on the digits."""
    data = write_digits_idx(tmp / "digits")
    base = tmp / "base.toml"
    base.write_text(
        f'data = "mnist:{data}"\nmodel = "fc_snn"\nsteps = 4\nepochs = {epochs}\nbatch = 64\n'
        f"limit = {limit}\n[model_options]\nhidden = 32\n"
    )
    space_file = tmp / "space.toml"
    space_file.write_text(space)
    return base, space_file


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).strip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli(*args), capture_output=True, text=True, env=child_env(), cwd=ROOT, timeout=timeout
    )
