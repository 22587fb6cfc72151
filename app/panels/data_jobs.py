"""Work behind the Data tab, Qt-free so it runs on a worker thread: open a data set, pick and
featurise a few examples per class, find the shared example data, play a clip.

Each ``*_job`` returns a factory for ``app.workers.PanelJobs.start``: ``job(stop)`` is a generator.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from engine.errors import DeviceError
from engine.paths import shared_data_candidates

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    """One item shown in the examples grid: its features (or image) and its clip."""

    index: int
    label: int
    name: str
    matrix: np.ndarray
    waveform: np.ndarray | None
    sample_rate: int


@dataclass(frozen=True)
class DataOverview:
    """What the tab shows about a data set (built on the worker, drawn on the GUI thread)."""

    spec: str
    source: object  # engine.data.specs.DataSource (kept to play and re-featurise its clips)
    summary: object  # engine.data.specs.DatasetSummary
    sizes: object  # engine.data.specs.SplitSizes (the carved train/val/test)
    examples: tuple[Example, ...]


def shared_data_specs() -> list[tuple[str, str]]:
    """``(title, spec)`` of the example data sets found in ``../shared/data`` (may be empty)."""
    roots = shared_data_candidates()
    out: list[tuple[str, str]] = []
    for root in roots:
        fsdd = root / "fsdd" / "recordings"
        if fsdd.is_dir() and not any(s.startswith("fsdd:") for _t, s in out):
            out.append(("Free Spoken Digit Dataset (3000 clips)", f"fsdd:{fsdd}"))
        mnist = root / "mnist"
        if (mnist / "t10k-images-idx3-ubyte.gz").is_file() or (
            mnist / "t10k-images-idx3-ubyte"
        ).is_file():
            if not any(s.startswith("mnist:") for _t, s in out):
                out.append(("MNIST test set (10,000 images)", f"mnist:{mnist}"))
    return out


def pick_examples(source, per_class: int, seed: int = 0, max_classes: int = 12) -> list[int]:
    """Item indices: up to ``per_class`` per class (first ``max_classes`` classes), seeded."""
    rng = np.random.default_rng(seed)
    labels = source.labels()
    out = []
    for c in range(min(len(source.class_names), max_classes)):
        members = np.flatnonzero(labels == c)
        if len(members):
            out += sorted(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return [int(i) for i in out]


def make_example(source, i: int, cfg) -> Example:
    """Item ``i`` featurised with ``cfg`` (audio) or as its image."""
    from engine.audio.features import compute_features, prepare_clip

    item = source.items[i]
    name = os.path.basename(item.path) if item.path else f"#{item.index}"
    if source.kind in ("image", "spikes"):  # pixels, or a spike raster: shown as they are
        return Example(i, item.label, name, np.asarray(source.load(i), np.float32), None, 0)
    y = prepare_clip(source.load(i), source.sample_rate(i), cfg)
    return Example(i, item.label, name, compute_features(y, cfg), y, cfg.sample_rate)


def open_job(spec: str, cfg, per_class: int = 4, seed: int = 0):
    """Open ``spec``, summarise it and featurise a few examples; returns a ``DataOverview``."""

    def job(stop):
        from engine.data.specs import open_source, split_sizes

        yield "opening"
        source = open_source(spec)
        summary = source.summary()
        sizes = split_sizes(source, seed=seed)
        examples = []
        for i in pick_examples(source, per_class, seed):
            if stop.is_set():
                return None
            examples.append(make_example(source, i, cfg))
        return DataOverview(spec, source, summary, sizes, tuple(examples))

    return job


def examples_job(overview: DataOverview, cfg, per_class: int = 4, seed: int = 0):
    """Re-featurise the examples of an opened data set with new parameters."""

    def job(stop):
        examples = []
        for i in pick_examples(overview.source, per_class, seed):
            if stop.is_set():
                return None
            examples.append(make_example(overview.source, i, cfg))
        return tuple(examples)
        yield  # a generator, as the workers expect

    return job


def features_job(source, cfg, jobs: int | None = None):
    """``engine.data.feature_set.build_feature_set`` on an opened source (events: FeatureProgress)."""

    def job(stop):
        from engine.data.feature_set import build_feature_set

        return (yield from build_feature_set(source, cfg, jobs=jobs, stop=stop))

    return job


def output_device_problem() -> str | None:
    """Why no clip can be played (None when a default output device exists)."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: PortAudio library missing
        return f"sound output unavailable ({exc})"
    try:
        dev = sd.query_devices(kind="output")
    except Exception as exc:  # PortAudioError or ValueError when there is no device
        log.info("no audio output device: %s", exc)
        return "no audio output device"
    if not dev or dev.get("max_output_channels", 0) < 1:
        return "no audio output device"
    return None


def play_job(y: np.ndarray, sr: int):
    """Play a mono clip on the default output device; stops within 50 ms of ``stop``."""

    def job(stop):
        import sounddevice as sd

        from engine.audio.load import resample

        try:
            rate = int(sd.query_devices(kind="output")["default_samplerate"])
        except Exception as exc:
            raise DeviceError(f"no audio output device ({exc})") from None
        data = resample(np.asarray(y, np.float32), int(sr), rate) if rate != sr else y
        block = max(rate // 20, 1)
        try:
            with sd.OutputStream(samplerate=rate, channels=1, dtype="float32") as stream:
                for k in range(0, len(data), block):
                    if stop.is_set():
                        break
                    stream.write(np.ascontiguousarray(data[k : k + block, None], np.float32))
                    yield k + block
        except sd.PortAudioError as exc:
            raise DeviceError(f"audio output failed: {exc}") from None
        return len(data)

    return job
