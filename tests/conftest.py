"""Test set-up: Qt offscreen, private settings and caches, and the shared data locations."""

import os
import pathlib

import pytest
from mediaserver import MediaServer
from pulsekit import fsdd_checkpoint, no_sound_server, pulse_server  # noqa: F401 - fixtures

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


# ----- the Range-capable media server of tests/mediaserver.py (AudioSet download tests)
@pytest.fixture
def media_server():
    """``start(folder, behaviours=None, **kw) -> MediaServer`` on 127.0.0.1, stopped afterwards."""
    servers = []

    def start(folder, behaviours=None, **kw):
        server = MediaServer(folder, behaviours, **kw).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# ----- the fuzzing tests' shared fixtures (tests/fuzzkit.py)
@pytest.fixture(scope="module")
def tally(request):
    """Inputs tried per reader and outcome in one test module; reported when the module ends
    under the module's name (``test_fuzz_audio`` -> ``audio``)."""
    from collections import Counter

    from fuzzkit import report

    counts: Counter[tuple[str, str]] = Counter()
    yield counts
    report(counts, request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_fuzz_"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Unique file names in one module-wide folder (see ``fuzzkit.Files``)."""
    from fuzzkit import Files

    return Files(tmp_path_factory.mktemp("fuzz"))


# ----- scikit-learn's bundled digits as MNIST IDX files: a real data set with no download
@pytest.fixture(scope="session")
def digits_mnist_dir(tmp_path_factory):
    """A folder with ``t10k-images/labels-idx*-ubyte.gz`` holding the 1797 bundled 8x8 digits
    (upscaled to 28x28), so ``mnist:DIR`` opens them (first 80% train, the rest test)."""
    import gzip
    import struct

    import numpy as np

    from engine.data.samples import digits_sample

    folder = tmp_path_factory.mktemp("digits")
    images, labels = digits_sample(28)
    images = (np.clip(images, 0, 1) * 255).astype(np.uint8)
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())
    return folder
