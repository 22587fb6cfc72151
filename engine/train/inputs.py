"""Where a training run's data come from: the feature set of a spec, and the ``--limit`` slice."""

from __future__ import annotations

import threading

import numpy as np

from engine.errors import ConfigError
from engine.train.config import RunConfig
from engine.train.events import Preparing


def load_data(cfg: RunConfig, stop: threading.Event):
    """Generator: ``Preparing`` events while the features are built; returns the FeatureSet
    (``None`` when stopped)."""
    if not cfg.data:
        raise ConfigError("data: no data set given (e.g. fsdd:PATH, mnist:PATH, folder:PATH)")
    from engine.audio.features import FeatureConfig
    from engine.data.feature_set import build_feature_set

    source = cfg.data
    fcfg = FeatureConfig.from_dict(cfg.features)
    # no [features]: the settings the data call for (engine.audio.feature_proposal)
    if not cfg.features:
        from engine.audio.feature_proposal import propose_for_source
        from engine.data.specs import open_source

        source = open_source(cfg.data)
        proposal = propose_for_source(source)
        if proposal is not None:
            fcfg = proposal.config
            yield Preparing(proposal.describe(), 0, 0)
    augment = None
    if cfg.augment:
        from engine.audio.augment import AugmentConfig

        augment = AugmentConfig.from_dict(cfg.augment)
    yield Preparing(f"features for {cfg.data}", 0, 0)
    gen = build_feature_set(
        source,
        fcfg,
        seed=cfg.seed,
        augment=augment,
        stop=stop,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
    )
    while True:
        try:
            ev = next(gen)
        except StopIteration as done:
            return None if stop.is_set() else done.value
        yield Preparing(f"features ({ev.phase}) {ev.message}".strip(), ev.done, ev.total)


def limit_splits(splits: dict, limit: int, seed: int) -> dict[str, np.ndarray]:
    """A seeded random ``limit``-example slice, each split cut in the same proportion."""
    out = {k: np.asarray(splits.get(k, []), dtype=np.int64) for k in ("train", "val", "test")}
    total = sum(len(v) for v in out.values())
    if not limit or limit >= total:
        return out
    rng = np.random.default_rng([seed, 7919])
    frac = limit / total
    return {
        k: np.sort(rng.choice(v, size=max(1, round(len(v) * frac)), replace=False)) if len(v) else v
        for k, v in out.items()
    }


def with_features(cfg: RunConfig, fs) -> RunConfig:
    """``cfg`` with the audio feature settings ``fs`` was built with written into ``features``
    when it gave none, so the run folder's config.toml records what was used."""
    fc = getattr(fs, "feature_config", None)
    if cfg.features or not hasattr(fc, "to_dict") or fc.kind == "image":
        return cfg
    return cfg.replace(features={k: v for k, v in fc.to_dict().items() if v is not None})
