"""Test set-up: Qt offscreen, private settings and caches, and the shared data locations."""

import os
import pathlib

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("SNN_SHARED_DATA", ROOT.parent / "shared" / "data"))
FSDD = SHARED / "fsdd" / "recordings"
MNIST = SHARED / "mnist"
AUDIOSET = SHARED / "audioset"


def need(path: pathlib.Path):
    """Skip (with the reason) when a piece of ../shared/data is absent."""
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder is not beside this checkout)")
    return path


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("SNN_EXPLORER_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("SNN_EXPLORER_CACHE", str(base / "cache"))


@pytest.fixture
def fsdd_dir():
    return need(FSDD)


@pytest.fixture
def mnist_dir():
    return need(MNIST)


@pytest.fixture
def audioset_dir():
    return need(AUDIOSET)
