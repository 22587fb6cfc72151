"""Train / validation / test splits: the source's own, else stratified by class with a seed,
keeping groups (a speaker, a source recording) whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.data.source import DataSource

SPLITS = ("train", "val", "test")


def split_indices(
    source: DataSource,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    group_key: bool = True,
) -> dict[str, np.ndarray]:
    """Train/val/test item indices (sorted ``int64``), disjoint, covering every item.

    The source's own split wins: items marked ``test`` are the test set, and so on. A split the
    source lacks is carved out of train, stratified by class with ``seed``: ``test_fraction``
    and ``val_fraction`` are fractions of all items when the source has no split at all, of
    the train items otherwise. With ``group_key`` (and a source whose ``group_splits`` is
    true) items sharing an ``Item.group`` always land in the same split.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= float(value) < 1.0:
            raise ConfigError(f"{name}={value} must be in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError("val_fraction + test_fraction must be below 1")
    y = source.labels()
    n = len(y)
    marked = [it.split for it in source.items]
    has_split = any(marked)
    use_groups = group_key and source.group_splits
    groups = np.array(
        [
            it.group if (use_groups and it.group is not None) else f"\0{i}"
            for i, it in enumerate(source.items)
        ],
        dtype=object,
    )
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    train = np.array([i for i in range(n) if (marked[i] or "train") == "train"], dtype=np.int64)
    for name in ("test", "val"):
        own = np.array([i for i in range(n) if marked[i] == name], dtype=np.int64)
        if len(own):
            out[name] = own
            continue
        frac = test_fraction if name == "test" else val_fraction
        if not has_split and name == "val" and test_fraction > 0:
            frac = val_fraction / (1.0 - test_fraction)  # a fraction of all items, not of the rest
        train, carved = _carve(train, frac, y, groups, rng)
        out[name] = carved
    out["train"] = train
    return {k: np.sort(out[k]).astype(np.int64) for k in SPLITS}


def _carve(indices, fraction, y, groups, rng) -> tuple[np.ndarray, np.ndarray]:
    """Take about ``fraction`` of ``indices`` out, stratified by class, whole groups only."""
    indices = np.asarray(indices, dtype=np.int64)
    if fraction <= 0 or len(indices) == 0:
        return indices, np.zeros(0, dtype=np.int64)
    sub_groups = groups[indices]
    uniq, inverse = np.unique(sub_groups, return_inverse=True)
    if len(uniq) == len(indices):  # no shared groups: exact per-class stratification
        # per-class quotas by largest remainder, so the total is round(fraction * n) exactly
        classes, sizes = np.unique(y[indices], return_counts=True)
        exact = fraction * sizes
        quota = np.floor(exact).astype(np.int64)
        extra = int(round(fraction * len(indices))) - int(quota.sum())
        if extra > 0:
            order = np.lexsort((rng.random(len(classes)), -(exact - quota)))
            quota[order[:extra]] += 1
        carved = []
        for c, k in zip(classes, quota):
            members = indices[y[indices] == c]
            carved.append(rng.permutation(members)[:k])
        taken = np.concatenate(carved) if carved else np.zeros(0, dtype=np.int64)
    else:
        # greedy: visit groups in random order, biggest first, and put each in the carved set
        # while that brings the per-class counts closer to their targets
        n_classes = int(y.max()) + 1
        target = fraction * np.bincount(y[indices], minlength=n_classes)
        have = np.zeros(n_classes)
        g_counts = np.zeros((len(uniq), n_classes))
        np.add.at(g_counts, (inverse, y[indices]), 1)
        order = rng.permutation(len(uniq))
        order = order[np.argsort(-g_counts[order].sum(axis=1), kind="stable")]
        chosen = np.zeros(len(uniq), dtype=bool)
        for g in order:
            after = have + g_counts[g]
            if np.sum((after - target) ** 2) < np.sum((have - target) ** 2):
                have = after
                chosen[g] = True
        taken = indices[chosen[inverse]]
    mask = np.isin(indices, taken)
    return indices[~mask], indices[mask]


@dataclass(frozen=True)
class SplitSizes:
    """Sizes of ``split_indices`` for display."""

    train: int
    val: int
    test: int
    per_class: dict[str, np.ndarray] = field(default_factory=dict)


def split_sizes(source: DataSource, **kwargs) -> SplitSizes:
    """``split_indices`` sizes, total and per class."""
    idx = split_indices(source, **kwargs)
    y = source.labels()
    c = len(source.class_names)
    per = {k: np.bincount(y[v], minlength=c) for k, v in idx.items()}
    return SplitSizes(len(idx["train"]), len(idx["val"]), len(idx["test"]), per)
