"""Cross-validation: one normal run per fold in a parent folder, and a summary over the folds.

``cross_validate(cfg, out_dir, cv)`` trains ``OUT/fold-1`` ... ``OUT/fold-K`` (each a normal run
folder, readable by the Training tab and ``classify``) and writes ``OUT/cv_summary.json``: the
mean and standard deviation of the test accuracy over the folds and the per-class recall
(of the folds' test confusion matrices summed).

Folds (``fold_plan``):

- a ``fold`` column in a CSV manifest (``Item.fold``) is honoured: fold ``f`` is the test set
  of run ``f``, the other folds train;
- ``cv = "speakers"`` (or ``"groups"``): leave one group out (FSDD: one speaker), so the
  test speaker is never heard in training;
- ``cv = K``: K folds stratified by class that keep each ``Item.group`` whole
  (scikit-learn's ``StratifiedGroupKFold``, seeded).

Inside each fold the validation split (early stopping, model selection) is carved out of the
training folds the same group-aware way, so it never shares a group with training either.
Features are computed once for the whole set; waveform augmentation copies are not made.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import warnings
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.atomic import write_atomic
from engine.errors import ConfigError
from engine.train.config import RunConfig
from engine.train.events import TrainEvent
from engine.train.inputs import with_features
from engine.train.loop import train
from engine.train.run_folder import CV_SUMMARY_FILE

GROUP_CV = ("speakers", "groups")


@dataclass(frozen=True)
class Fold:
    """Item indices of one fold's splits."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class FoldStarted:
    """A fold's run starts (yielded before that run's own events)."""

    fold: int
    folds: int
    name: str
    run_dir: str
    n_train: int
    n_val: int
    n_test: int


def parse_cv(text: str | int) -> str | int:
    """``--cv`` value: a fold count (2 or more), ``speakers``/``groups``, or ``folds``."""
    if isinstance(text, int) or str(text).strip().isdigit():
        k = int(text)
        if k < 2:
            raise ConfigError(f"--cv {k}: cross-validation needs at least 2 folds")
        return k
    word = str(text).strip().lower()
    if word in (*GROUP_CV, "folds"):
        return word
    raise ConfigError(f"--cv {text!r}: give a number of folds, 'folds' or 'speakers'")


def _groups(source) -> np.ndarray:
    return np.array(
        [it.group if it.group is not None else f"\0{i}" for i, it in enumerate(source.items)],
        dtype=object,
    )


def _group_kfold(y, groups, k: int, seed: int):
    from sklearn.model_selection import StratifiedGroupKFold

    with warnings.catch_warnings():  # a class with fewer groups than folds: still a fine split
        warnings.simplefilter("ignore", UserWarning)
        kf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        try:
            return list(kf.split(np.zeros(len(y)), y, groups))
        except ValueError as exc:  # more folds than groups, or than the largest class
            raise ConfigError(f"cross-validation: {k} folds: {exc}") from None


def _carve_val(train: np.ndarray, y, groups, fraction: float, seed: int):
    """Take about ``fraction`` of ``train`` out as validation, whole groups, stratified."""
    n_groups = len(set(groups[train]))
    largest = int(np.bincount(y[train]).max())
    k = min(max(2, round(1 / fraction)) if fraction > 0 else 10, n_groups, largest)
    if k < 2:
        raise ConfigError("cross-validation: a fold's training part has one group: no validation")
    keep, val = _group_kfold(y[train], groups[train], k, seed)[0]
    return np.sort(train[keep]), np.sort(train[val])


def fold_plan(source, cv: str | int, seed: int = 0, val_fraction: float = 0.1) -> list[Fold]:
    """The folds of ``source`` for ``cv`` (see the module docstring). Raises ConfigError."""
    cv = parse_cv(cv)
    y = source.labels()
    n = len(y)
    groups = _groups(source)
    folds = [getattr(it, "fold", None) for it in source.items]
    tests: list[tuple[str, np.ndarray]] = []
    if cv in GROUP_CV:
        named = sorted({it.group for it in source.items if it.group is not None})
        if len(named) < 2:
            raise ConfigError(f"{source.spec}: --cv {cv} needs items with 2 or more groups")
        tests = [(str(g), np.flatnonzero(groups == g)) for g in named]
    elif any(f is not None for f in folds):
        if any(f is None for f in folds):
            raise ConfigError(f"{source.spec}: some rows have a fold and some do not")
        names = sorted(set(folds), key=lambda f: (0, int(f), "") if f.isdigit() else (1, 0, f))
        if isinstance(cv, int) and cv != len(names):
            raise ConfigError(
                f"{source.spec}: the manifest's fold column has {len(names)} folds, not {cv} "
                f"(use --cv {len(names)} or --cv folds)"
            )
        fold_of = np.array(folds, dtype=object)
        tests = [(str(f), np.flatnonzero(fold_of == f)) for f in names]
    elif cv == "folds":
        raise ConfigError(f"{source.spec}: --cv folds needs a manifest with a fold column")
    else:
        tests = [
            (str(k + 1), test) for k, (_, test) in enumerate(_group_kfold(y, groups, cv, seed))
        ]
    plan = []
    everything = np.arange(n)
    for k, (name, test) in enumerate(tests):
        rest = np.setdiff1d(everything, test)
        train_idx, val = _carve_val(rest, y, groups, val_fraction, seed + k)
        plan.append(Fold(name, train_idx, val, np.sort(test)))
    return plan


def fold_data(fs, fold: Fold):
    """The feature set with ``fold``'s splits (rows of ``fs``; augmented copies left out)."""
    item = np.asarray(fs.source_index)
    original = ~np.asarray(fs.augmented, dtype=bool) if len(fs.augmented) else True
    splits = {
        name: np.flatnonzero(np.isin(item, getattr(fold, name)) & original)
        for name in ("train", "val", "test")
    }
    return dataclasses.replace(fs, splits=splits)


def cross_validate(
    cfg: RunConfig,
    out_dir: str | Path,
    cv: str | int,
    stop: threading.Event | None = None,
) -> Generator[FoldStarted | TrainEvent, None, dict | None]:
    """Train one run per fold into ``out_dir/fold-<k>``; return the summary (None if stopped).

    Yields ``FoldStarted`` before each fold, then that fold's training events.
    """
    from engine.audio.augment import AugmentConfig
    from engine.audio.feature_proposal import propose_for_source
    from engine.audio.features import FeatureConfig
    from engine.data.feature_set import build_feature_set
    from engine.data.specs import open_source
    from engine.train.events import Preparing

    stop = stop or threading.Event()
    out = Path(out_dir)
    if (out / CV_SUMMARY_FILE).exists() or (out / "fold-1").exists():
        raise ConfigError(f"{out}: already holds a cross-validation; choose another folder")
    if not cfg.data:
        raise ConfigError("data: no data set given (e.g. fsdd:PATH, csv:PATH)")
    source = open_source(cfg.data)
    plan = fold_plan(source, cv, cfg.seed, cfg.val_fraction)
    fcfg = FeatureConfig.from_dict(cfg.features)
    if not cfg.features:
        proposal = propose_for_source(source)
        fcfg = proposal.config if proposal is not None else fcfg
    if cfg.augment and AugmentConfig.from_dict(cfg.augment).waveform_enabled:
        warnings.warn("cross-validation makes no waveform augmentation copies", stacklevel=2)
    gen = build_feature_set(source, fcfg, seed=cfg.seed, stop=stop)
    while True:
        try:
            ev = next(gen)
        except StopIteration as done:
            fs = done.value
            break
        yield Preparing(f"features ({ev.phase}) {ev.message}".strip(), ev.done, ev.total)
    if fs is None:
        return None
    cfg = with_features(cfg, fs)
    results = []
    for k, fold in enumerate(plan, start=1):
        data = fold_data(fs, fold)
        run_dir = out / f"fold-{k}"
        sizes = [len(data.splits[s]) for s in ("train", "val", "test")]
        yield FoldStarted(k, len(plan), fold.name, str(run_dir), *sizes)
        result = yield from train(cfg, run_dir, stop=stop, data=data)
        if result.status == "stopped":
            return None
        results.append((fold, result))
    summary = summarise(results, list(fs.class_names), cv, cfg)
    write_summary(out / CV_SUMMARY_FILE, summary)
    return summary


def summarise(results, class_names: list[str], cv, cfg: RunConfig) -> dict:
    """The summary of ``[(Fold, TrainResult)]``: test accuracy mean and standard deviation
    (sample, ddof=1; 0 for one fold), per-class recall of the summed test confusion matrices."""
    accs = np.array([r.test_acc for _f, r in results], dtype=np.float64)
    c = len(class_names)
    conf = np.zeros((c, c), dtype=np.int64)
    for _f, r in results:
        test = (r.metrics or {}).get("test") or {}
        if test.get("confusion") is not None:
            conf += np.asarray(test["confusion"], dtype=np.int64)
    support = conf.sum(axis=1)
    recall = np.where(support > 0, np.diag(conf) / np.maximum(support, 1), np.nan)
    return {
        "cv": cv,
        "model": cfg.model,
        "data": cfg.data,
        "folds": [
            {
                "fold": k,
                "name": f.name,
                "run_dir": r.run_dir,
                "status": r.status,
                "n_train": int(len(f.train)),
                "n_val": int(len(f.val)),
                "n_test": int(len(f.test)),
                "test_acc": _num(r.test_acc),
                "best_val_acc": _num(r.best_val_acc),
                "epochs_done": int(r.epochs_done),
            }
            for k, (f, r) in enumerate(results, start=1)
        ],
        "mean_test_acc": _num(accs.mean()) if len(accs) else None,
        "std_test_acc": _num(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
        "class_names": list(class_names),
        "recall": {name: _num(recall[i]) for i, name in enumerate(class_names)},
        "confusion": conf.tolist(),
    }


def _num(v) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


def write_summary(path: str | Path, summary: dict) -> None:
    write_atomic(path, json.dumps(summary, indent=2) + "\n")


def summary_lines(summary: dict) -> list[str]:
    """The printed table: one row per fold, then the mean and sd, then recall per class."""
    rows = [f"{'fold':>4}  {'name':<10} {'train':>6} {'val':>5} {'test':>5}  test acc"]
    for f in summary["folds"]:
        acc = "" if f["test_acc"] is None else f"{100 * f['test_acc']:.1f}%"
        rows.append(
            f"{f['fold']:>4}  {f['name'][:10]:<10} {f['n_train']:>6} {f['n_val']:>5} "
            f"{f['n_test']:>5}  {acc}"
        )
    mean, sd = summary["mean_test_acc"], summary["std_test_acc"]
    if mean is not None:
        rows.append(
            f"mean test accuracy {100 * mean:.1f}% +/- {100 * (sd or 0):.1f}% (sd over "
            f"{len(summary['folds'])} folds)"
        )
    recalls = [f"{name} {100 * v:.0f}%" for name, v in summary["recall"].items() if v is not None]
    rows.append("recall per class: " + ", ".join(recalls))
    return rows
