"""A whole data set as one feature array, built in parallel and cached on disk.

``build_feature_set`` is a generator (the CLI and the GUI drive the same code): it yields
``FeatureProgress`` events and returns a ``FeatureSet``. Each clip's features are stored as one
``.npy`` file under ``<cache>/features/<config hash>/``, named by a hash of the file's absolute
path, size and modification time (and, for augmented copies, the copy number, seed and
augmentation settings). A second run only reads those files; changing a parameter, or touching a
file, recomputes just what changed. Files are written atomically (temporary name, then rename),
so a cancelled or crashed run never leaves a half-written entry.

Over 400 lines: one job (features of a whole set, with its progress events, parallel pool,
cache and assembly); the per-clip features are :mod:`engine.audio.features`, the cache files
:mod:`engine.audio.feature_cache`.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from engine.audio.augment import AugmentConfig, WaveformAugmenter, copy_rng
from engine.audio.feature_cache import (
    bundle_key,
    cache_file,
    clean_stale_parts,
    file_key,
    load_cached,
    save_atomic,
)
from engine.audio.features import FeatureConfig, compute_features_batch, prepare_clip
from engine.data.specs import DataSource, open_source, split_indices
from engine.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: samples (native or target, the larger) per work unit: about 0.1-0.3 s of work, so a stop
#: request is honoured quickly and per-chunk overhead stays small (FSDD: 50 clips a chunk)
CHUNK_SAMPLES = 400_000
CHUNK_MAX = 64
#: clips longer than this (samples) are featurised on every core when ``jobs`` is None
PARALLEL_SAMPLES = 32_000


@dataclass(frozen=True)
class FeatureProgress:
    """Progress of ``build_feature_set``.

    ``phase`` is ``"open"`` (reading the data set), ``"cache"`` (looking up cached clips),
    ``"compute"`` or ``"done"``; ``done``/``total`` count clips (augmented copies included),
    ``cached`` of them came from the cache, ``failed`` could not be read.
    """

    phase: str
    done: int
    total: int
    cached: int = 0
    failed: int = 0
    elapsed: float = 0.0
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class FeatureSet:
    """Features of a whole data set, ready for training.

    Attributes
    ----------
    x : np.ndarray
        float32 ``[N, 1, F, T]`` (MFCC/log-mel), ``[N, 1, H, W]`` images in [0, 1] or
        ``[N, 1, 700, T]`` binned spikes (SHD/SSC; time last).
    y : np.ndarray
        int64 ``[N]`` class indices.
    splits : dict[str, np.ndarray]
        ``"train"``, ``"val"``, ``"test"`` row indices into ``x``; only train holds augmented
        copies.
    class_names : list[str]
    feature_config : FeatureConfig
    spec : str
    paths : list[str | None]
        Source file of each row (None for in-memory images).
    source_index : np.ndarray
        int64 ``[N]`` item index in the data source of each row.
    augmented : np.ndarray
        bool ``[N]``: row is an augmented copy.
    skipped : tuple[tuple[str, str], ...]
        ``(path, reason)`` for files left out, from opening or from featurising.
    """

    x: np.ndarray
    y: np.ndarray
    splits: dict[str, np.ndarray]
    class_names: list[str]
    feature_config: FeatureConfig
    spec: str
    paths: list[str | None]
    source_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    augmented: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, F, T)`` of one example (what a model is built for)."""
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


# ----------------------------------------------------------------------------- work unit
def featurise_chunk(
    tasks: list[tuple[int, str, int]],
    cfg_dict: dict,
    aug_dict: dict | None,
    seed: int,
) -> list[tuple[int, np.ndarray | None, str]]:
    """Features of ``tasks`` = ``[(row, path, copy)]``; ``copy > 0`` is an augmented copy.

    Runs in a worker process (hence plain arguments). Returns ``[(row, features or None,
    reason)]``; a file that cannot be read gives ``None`` and the reason, not an exception.
    """
    cfg = FeatureConfig.from_dict(cfg_dict)
    augmenter = None
    if aug_dict:
        augmenter = WaveformAugmenter(AugmentConfig.from_dict(aug_dict), cfg.sample_rate)
    rows, clips, out = [], [], []
    from engine.audio.load import load_audio

    for row, path, copy in tasks:
        try:
            y, sr = load_audio(path)
            clip = prepare_clip(y, sr, cfg)
            if copy > 0 and augmenter is not None:
                clip = augmenter(clip, copy_rng(seed, path, copy))
        except DataError as exc:
            reason = str(exc)
            out.append((row, None, reason[len(path) + 2 :] if reason.startswith(path) else reason))
            continue
        rows.append(row)
        clips.append(clip)
    if clips:
        feats = compute_features_batch(np.stack(clips), cfg)
        out += [(row, feats[i], "") for i, row in enumerate(rows)]
    return out


def _pool_context():
    # fork is unsafe in a process with threads (the GUI); forkserver starts clean workers once
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def default_jobs() -> int:
    return max(1, os.cpu_count() or 1)


# ----------------------------------------------------------------------------- build
def build_feature_set(
    spec: str | DataSource,
    cfg: FeatureConfig | None = None,
    *,
    seed: int = 0,
    augment: AugmentConfig | None = None,
    jobs: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    stop: threading.Event | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    group_key: bool = True,
    use_cache: bool = True,
    executor: str = "thread",
) -> Generator[FeatureProgress, None, FeatureSet | None]:
    """Featurise a data set (yields ``FeatureProgress``; returns a ``FeatureSet``).

    Parameters
    ----------
    spec : str or DataSource
        A data set spec (``fsdd:PATH``...) or an already opened source.
    cfg : FeatureConfig
        Feature parameters (ignored for image data sets, whose pixels are the features).
    seed : int
        Seeds the carved splits and the augmented copies.
    augment : AugmentConfig or None
        Waveform augmentation: ``augment.copies`` extra copies of each training clip.
    jobs : int or None
        Parallel workers; None = every core for long clips (over ``PARALLEL_SAMPLES``), the
        calling thread for short ones, where threads do not pay; 1 = the calling thread.
    executor : {"thread", "process"}
        Threads (default: decoding, resampling and FFTs release the GIL, nothing to pickle,
        safe inside the GUI) or processes (forkserver; the calling script needs an
        ``if __name__ == "__main__":`` guard).
    cache_dir : path or None
        Cache root (default ``engine.paths.cache_dir("features")``).
    stop : threading.Event or None
        Set it to stop; the generator then returns ``None`` within about a second.
        Clips finished so far stay cached.
    use_cache : bool
        False recomputes everything (and does not write the cache).

    Raises
    ------
    DataError, ConfigError
        Bad spec or parameters; a run in which no clip could be read.
    """
    t0 = time.monotonic()
    cfg = cfg or FeatureConfig()
    if executor not in ("thread", "process"):
        raise ConfigError(f"executor={executor!r} must be 'thread' or 'process'")
    yield FeatureProgress("open", 0, 0, message=f"opening {spec}")
    source = spec if isinstance(spec, DataSource) else open_source(spec)
    splits = split_indices(
        source,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        group_key=group_key,
    )
    if source.kind in ("image", "spikes"):  # the items already are arrays: no features
        return (yield from _image_set(source, splits, t0))
    if cfg.kind == "image":
        raise ConfigError(f"{source.spec}: an audio data set needs kind 'mfcc' or 'logmel'")

    aug = augment if augment is not None and augment.waveform_enabled else None
    tasks: list[tuple[int, str, int]] = [(i, it.path, 0) for i, it in enumerate(source.items)]
    if aug is not None:
        for i in splits["train"]:
            tasks += [(int(i), source.items[i].path, k) for k in range(1, aug.copies + 1)]
    total = len(tasks)
    shape = cfg.shape()
    root = os.fspath(cache_dir) if cache_dir is not None else None
    if root is None:
        from engine.paths import cache_dir as default_cache

        root = os.fspath(default_cache("features"))
    root = os.path.join(root, cfg.cache_key())
    clean_stale_parts(root)  # temporary files of writers killed mid-write
    extra_aug = f"{aug.waveform_key()}|{seed}" if aug is not None else ""

    # ---- cache look-up
    x = np.zeros((total, 1) + shape, dtype=np.float32)
    keys: list[str | None] = [None] * total
    for row, (_i, path, copy) in enumerate(tasks):
        try:
            keys[row] = file_key(path, copy, extra_aug if copy else "")
        except OSError:
            pass  # vanished since opening: featurising reports it
    bundle = None
    if all(keys):
        bundle = os.path.join(root, "sets", bundle_key(keys) + ".npy")
        arr = load_cached(bundle, (total, 1) + shape) if use_cache else None
        if arr is not None:  # the whole set was built before with these very files
            yield FeatureProgress("done", total, total, total, 0, time.monotonic() - t0)
            return _assemble(source, cfg, tasks, arr, {}, splits)
    todo: list[int] = []
    cached = 0
    last = time.monotonic()
    for row in range(total):
        if keys[row] is None:
            todo.append(row)
            continue
        arr = load_cached(cache_file(root, keys[row]), shape) if use_cache else None
        if arr is None:
            todo.append(row)
        else:
            x[row, 0] = arr
            cached += 1
        if stop is not None and stop.is_set():
            return None
        if time.monotonic() - last > 0.1:
            last = time.monotonic()
            yield FeatureProgress("cache", cached, total, cached, 0, last - t0, "reading cache")
    yield FeatureProgress("compute", cached, total, cached, 0, time.monotonic() - t0)

    # ---- compute what is missing
    failed: dict[int, str] = {}
    done = cached
    native = [inf.duration * inf.sample_rate for inf in getattr(source, "infos", [])]
    per_clip = max(float(np.mean(native)) if native else 0.0, cfg.n_samples(), 1.0)
    size = int(np.clip(CHUNK_SAMPLES // per_clip, 1, CHUNK_MAX))
    chunks = [todo[k : k + size] for k in range(0, len(todo), size)]
    payload = [
        (
            [(row, tasks[row][1], tasks[row][2]) for row in chunk],
            cfg.to_dict(),
            aug.to_dict() if aug else None,
            seed,
        )
        for chunk in chunks
    ]
    if jobs is None:
        # short clips are bound by per-call Python work that holds the GIL, so threads only
        # add overhead (FSDD: 1.0 s serial vs 1.2 s on 2 threads); long clips spend their time
        # in decoding, resampling and FFTs, which release it (10 s clips: 1.4x on 2 cores)
        n_jobs = default_jobs() if per_clip >= PARALLEL_SAMPLES else 1
    else:
        n_jobs = max(1, int(jobs))
    if n_jobs > 1 and len(chunks) > 1:
        results = _run_pool(payload, min(n_jobs, len(chunks)), stop, executor)
    else:
        results = (featurise_chunk(*p) for p in payload)
    try:
        for result in results:
            if result is None:  # stopped
                return None
            for row, arr, reason in result:
                if arr is None:
                    failed[row] = reason
                else:
                    x[row, 0] = arr
                    if use_cache and keys[row] is not None:
                        save_atomic(cache_file(root, keys[row]), arr)
                done += 1
            yield FeatureProgress(
                "compute",
                done,
                total,
                cached,
                len(failed),
                time.monotonic() - t0,
                f"{done}/{total} clips",
            )
            if stop is not None and stop.is_set():  # checked before the next chunk starts
                return None

    finally:
        if hasattr(results, "close"):
            results.close()

    # ---- assemble (dropping clips that could not be read)
    if bundle is not None and not failed and use_cache:
        save_atomic(bundle, x)
    result = _assemble(source, cfg, tasks, x, failed, splits)
    yield FeatureProgress(
        "done",
        total,
        total,
        cached,
        len(failed),
        time.monotonic() - t0,
        f"{len(result.y)} clips, {cached} from the cache, {len(failed)} failed",
    )
    return result


def _assemble(source, cfg, tasks, x, failed: dict[int, str], splits) -> FeatureSet:
    """The FeatureSet of ``tasks`` rows, minus those that failed, with splits remapped."""
    total = len(tasks)
    keep = np.array([row not in failed for row in range(total)], dtype=bool)
    if not keep.any():
        raise DataError(f"{source.spec}: no clip could be read ({len(failed)} failed)")
    rows = np.flatnonzero(keep)
    new_row = -np.ones(total, dtype=np.int64)
    new_row[rows] = np.arange(len(rows))
    item_of = np.array([t[0] for t in tasks], dtype=np.int64)
    copy_of = np.array([t[2] for t in tasks], dtype=np.int64)
    out_splits = {}
    for name, idx in splits.items():
        member = np.isin(item_of, idx) & keep
        if name != "train":
            member &= copy_of == 0
        out_splits[name] = new_row[np.flatnonzero(member)]
    skipped = tuple(source.skipped) + tuple((tasks[r][1], failed[r]) for r in sorted(failed))
    return FeatureSet(
        x=x if len(rows) == total else x[rows],
        y=source.labels()[item_of[rows]],
        splits=out_splits,
        class_names=list(source.class_names),
        feature_config=cfg,
        spec=source.spec,
        paths=[tasks[r][1] for r in rows],
        source_index=item_of[rows],
        augmented=copy_of[rows] > 0,
        skipped=skipped,
    )


def _run_pool(payload, workers: int, stop: threading.Event | None, executor: str = "thread"):
    """Yield each chunk's result as it completes; yield None (and stop workers) when stopped."""
    if executor == "process":
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context())
    else:
        pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="features")
    try:
        pending = {pool.submit(featurise_chunk, *p) for p in payload}
        while pending:
            finished, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                yield fut.result()
            if stop is not None and stop.is_set():
                yield None
                return
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _image_set(source: DataSource, splits, t0) -> Generator[FeatureProgress, None, FeatureSet]:
    n = len(source.items)
    images = np.stack([source.load(i) for i in range(n)]).astype(np.float32)
    result = FeatureSet(
        x=images[:, None],
        y=source.labels(),
        splits=splits,
        class_names=list(source.class_names),
        feature_config=FeatureConfig(kind=source.kind),
        spec=source.spec,
        paths=[it.path for it in source.items],
        source_index=np.arange(n, dtype=np.int64),
        augmented=np.zeros(n, dtype=bool),
        skipped=tuple(source.skipped),
    )
    what = "spike trains" if source.kind == "spikes" else "images"
    yield FeatureProgress("done", n, n, 0, 0, time.monotonic() - t0, f"{n} {what}")
    return result


def load_feature_set(
    spec: str | DataSource, cfg: FeatureConfig | None = None, **kwargs
) -> FeatureSet:
    """Run ``build_feature_set`` to the end and return its ``FeatureSet``."""
    gen = build_feature_set(spec, cfg, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            if done.value is None:
                raise DataError(f"{spec}: feature extraction was stopped") from None
            return done.value
