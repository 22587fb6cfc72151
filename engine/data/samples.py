"""Small images to encode without any download: scikit-learn's bundled 8x8 digits, and MNIST
IDX files when they are at hand."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from engine.data.idx import read_idx
from engine.errors import DataError
from engine.paths import find_shared_data


def upscale(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a 2-D image to ``size x size`` (pixel centres aligned)."""
    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape

    def axis_weights(n_in: int):
        pos = (np.arange(size) + 0.5) * n_in / size - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, pos - lo

    r0, r1, fr = axis_weights(h)
    c0, c1, fc = axis_weights(w)
    rows = image[r0] * (1 - fr)[:, None] + image[r1] * fr[:, None]
    return rows[:, c0] * (1 - fc) + rows[:, c1] * fc


def digits_sample(size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 bundled 8x8 digits, scaled to [0, 1] and upscaled to ``size``.

    Returns ``(images float32 [N, size, size], labels int64 [N])``. Reads the CSV that
    ``sklearn.datasets.load_digits`` reads, without importing scikit-learn (which takes seconds).
    """
    spec = importlib.util.find_spec("sklearn")
    path = None
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if path is not None and path.exists():
        data = np.loadtxt(path, delimiter=",")
        images, labels = data[:, :-1].reshape(-1, 8, 8), data[:, -1]
    else:  # another scikit-learn layout: ask it
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, labels = bunch.images, bunch.target
    images = np.clip(images / 16.0, 0.0, 1.0)
    if size != 8:
        images = np.stack([upscale(im, size) for im in images])
    return images.astype(np.float32), labels.astype(np.int64)


def _labels_path(images_path: str) -> str | None:
    """``t10k-images-idx3-ubyte.gz`` -> ``t10k-labels-idx1-ubyte.gz`` when it exists."""
    folder, name = os.path.split(images_path)
    candidate = os.path.join(folder, name.replace("images", "labels").replace("idx3", "idx1"))
    return candidate if candidate != images_path and os.path.exists(candidate) else None


def mnist_images(path: str | os.PathLike, limit: int | None = None):
    """Images of an MNIST IDX file (in [0, 1], float32 ``[N, 28, 28]``) and their labels from the
    matching ``*labels-idx1*`` file beside it (``None`` when there is none)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        found = sorted(p for p in os.listdir(path) if "idx3" in p)
        if not found:
            raise DataError(f"{path}: no *-idx3-ubyte[.gz] image file in this folder")
        path = os.path.join(path, found[0])
    raw = read_idx(path, limit=limit)
    if raw.ndim != 3:
        raise DataError(f"{path}: expected images shaped [N, H, W], found {raw.shape}")
    images = raw.astype(np.float32)
    if raw.dtype == np.uint8:
        images /= 255.0
    labels_file = _labels_path(path)
    labels = read_idx(labels_file, limit=limit).astype(np.int64) if labels_file else None
    return images, labels


def default_mnist_dir() -> Path | None:
    """``../shared/data/mnist`` beside the checkout (or ``$SNN_SHARED_DATA/mnist``) if present."""
    return find_shared_data("mnist", lambda c: any("idx3" in p.name for p in c.iterdir()))


def default_mnist_images() -> Path | None:
    """The image IDX file in ``default_mnist_dir()`` (test set first), if any."""
    folder = default_mnist_dir()
    if folder is None:
        return None
    return sorted(p for p in folder.iterdir() if "idx3" in p.name)[0]
