"""Inputs of the Encoding tab: built-in digits, MNIST IDX files, image files, audio clips.

Everything here but ``read_image_file`` is Qt-free, so the audio loaders run on a worker thread
(``app.workers``); the science (MFCC, encoders) stays in ``engine``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from engine.data.samples import digits_sample, mnist_images, upscale
from engine.errors import DataError

MAX_IMAGE_SIDE = 64  # bigger images are scaled down: the raster has one row per pixel


@dataclass(frozen=True)
class LoadedInput:
    """One 2-D input ready to encode, and what to say about it."""

    matrix: np.ndarray  # image in [0, 1] [H, W], or features [F, frames]
    title: str  # the input plot's title
    item: str  # e.g. "label 7" or the clip's file name
    count: int  # items in the source (the index spin box's range)
    audio: bool = False
    waveform: np.ndarray | None = None
    sample_rate: int = 1


class ImageCache:
    """The image sources' arrays, read once per path (the panel owns one)."""

    def __init__(self):
        self._digits = None
        self._mnist: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    def digits(self, index: int, invert: bool = False) -> LoadedInput:
        if self._digits is None:
            self._digits = digits_sample(size=8)
        images, labels = self._digits
        i = int(np.clip(index, 0, len(images) - 1))
        img = upscale(images[i], 28)
        img = 1.0 - img if invert else img
        return LoadedInput(
            img, f"Built-in digit #{i} (8x8 upscaled to 28x28)", f"label {labels[i]}", len(images)
        )

    def mnist(self, path: str, index: int, invert: bool = False) -> LoadedInput:
        if path not in self._mnist:
            self._mnist[path] = mnist_images(path)
        images, labels = self._mnist[path]
        i = int(np.clip(index, 0, len(images) - 1))
        img = images[i].astype(np.float64)
        img = 1.0 - img if invert else img
        label = f"label {labels[i]}" if labels is not None else "no labels file"
        return LoadedInput(img, f"MNIST image #{i}", label, len(images))


def read_image_file(path: str, invert: bool = False) -> LoadedInput:
    """A picture file as grey levels in [0, 1], at most ``MAX_IMAGE_SIDE`` pixels a side."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage

    image = QImage(path)
    if image.isNull():
        raise DataError(f"{path}: not an image file Qt can read (try PNG, JPEG, BMP)")
    if max(image.width(), image.height()) > MAX_IMAGE_SIDE:
        image = image.scaled(
            MAX_IMAGE_SIDE,
            MAX_IMAGE_SIDE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    h, w, stride = grey.height(), grey.width(), grey.bytesPerLine()
    raw = np.frombuffer(grey.constBits(), dtype=np.uint8, count=h * stride)
    arr = raw.reshape(h, stride)[:, :w].astype(np.float64) / 255.0
    arr = 1.0 - arr if invert else arr
    return LoadedInput(arr, f"{os.path.basename(path)} ({w}x{h} grey)", "", 1)


def feature_config():
    """The MFCC settings of the tab: the engine's defaults, each coefficient standardised over
    time (so the loud 0th coefficient does not flatten the others); the encoders then scale
    the matrix to [0, 1]."""
    from engine.audio.features import FeatureConfig

    return FeatureConfig(kind="mfcc", normalise="per_coeff")


def load_audio_file(path: str) -> LoadedInput:
    """An audio file's clip (at the feature sample rate and duration) and its MFCC."""
    from engine.audio.features import compute_features
    from engine.audio.load import load_audio

    cfg = feature_config()
    y, sr = load_audio(path, sample_rate=cfg.sample_rate, duration=cfg.duration, align=cfg.align)
    mfcc = compute_features(y, cfg)
    return LoadedInput(
        mfcc,
        f"MFCC: {mfcc.shape[0]} x {mfcc.shape[1]} frames",
        os.path.basename(path),
        1,
        True,
        y,
        sr,
    )


def load_dataset_item(source, index: int) -> LoadedInput:
    """Item ``index`` of an opened ``engine.data.specs`` source (an audio clip, an image, or a
    spike raster of SHD/SSC)."""
    from engine.audio.features import compute_features, prepare_clip

    i = int(np.clip(index, 0, len(source) - 1))
    item = source.items[i]
    name = source.class_names[item.label] if 0 <= item.label < len(source.class_names) else "?"
    where = os.path.basename(item.path) if item.path else f"#{i}"
    if source.kind == "image":
        img = np.asarray(source.load(i), dtype=np.float64)
        return LoadedInput(img, f"{source.spec} #{i}", f"{name} ({where})", len(source))
    if source.kind == "spikes":  # SHD/SSC: the input already is a raster [channels, bins]
        raster = np.asarray(source.load(i), dtype=np.float64)
        c, t = raster.shape
        title = f"Input spikes of #{i}: {c} channels x {t} bins of {source.dt * 1000:g} ms"
        return LoadedInput(raster, title, f"class {name} ({where})", len(source))
    cfg = feature_config()
    y = prepare_clip(source.load(i), source.sample_rate(i), cfg)
    mfcc = compute_features(y, cfg)
    return LoadedInput(
        mfcc,
        f"MFCC of clip #{i}: {mfcc.shape[0]} x {mfcc.shape[1]} frames",
        f"class {name} ({where})",
        len(source),
        True,
        y,
        cfg.sample_rate,
    )


def audio_job(path: str | None = None, spec: str | None = None, index: int = 0, source=None):
    """A job for ``app.workers.PanelJobs.start``: load an audio file, or item ``index`` of the data
    set ``spec`` (``source`` is that data set already opened, or None to open it).

    Returns ``(source, LoadedInput)`` so the panel can keep the opened source (on its own thread).
    """

    def job(stop):
        if path is not None:
            return None, load_audio_file(path)
        from engine.data.specs import open_source

        opened = source if source is not None else open_source(spec)
        if stop.is_set():
            return opened, None
        return opened, load_dataset_item(opened, index)
        yield  # a generator, as the workers expect

    return job
