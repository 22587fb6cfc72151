"""Run configuration: one frozen dataclass, read from and written to TOML.

The same file is read by ``snn-explorer train --config FILE.toml`` and by the GUI's Training tab,
and every run folder holds a copy (``RUN_DIR/config.toml``). Example::

    data = "fsdd:../shared/data/fsdd/recordings"
    model = "csnn"
    steps = 25
    encoder = "direct"
    epochs = 15
    lr = 0.002

    [features]          # engine.audio.features.FeatureConfig fields; empty = that data kind's defaults
    n_mfcc = 20

    [model_options]     # build_model(**options): e.g. channels, kernels, pooling, batchnorm
    pooling = "avg"

    [augment]           # engine.audio.augment.AugmentConfig fields; empty = off
    spec_time_mask = 10

Unknown keys and bad values raise :class:`engine.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.errors import ConfigError

try:  # the one TOML reader (others import it from here)
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

ENCODERS = ("direct", "rate", "latency", "delta", "spikes")  # spikes: the data are spikes
LOSSES = ("ce_count", "mse_count", "ce_mem")
PREDICTIONS = ("count", "first_spike", "mem")
OPTIMISERS = ("adam", "adamw")
SCHEDULES = ("cosine", "step", "none")
CLASS_WEIGHTING = ("none", "weights", "balanced_sampling")
SELECT = ("last", "best_val", "best_loss")
RESETS = ("subtract", "zero", "none")
AMP = ("auto", "off", "bf16", "fp16")


@dataclass(frozen=True)
class RunConfig:
    """Everything a training run needs; seeds and device included.

    Spiking options (steps, encoder, surrogate, beta...) are ignored by the ANN models.
    ``limit`` > 0 trains on a seeded random slice of about that many examples (val and test
    are cut in the same proportion). ``patience`` > 0 stops after that many epochs with neither a
    better validation accuracy nor a lower validation loss. ``select`` keeps the last epoch's
    weights ("last"), the highest validation accuracy's ("best_val") or the lowest validation
    loss's ("best_loss"): that model is best.pt and is tested. ``clip_grad`` > 0
    clips the gradient norm. ``mixup`` > 0 mixes pairs of training examples and their labels
    with a weight drawn from Beta(mixup, mixup). ``crop_s`` > 0 trains on random crops of that
    many seconds of each clip's features and tests on the mean over overlapping crops.
    """

    data: str = ""
    features: dict = field(default_factory=dict)
    augment: dict = field(default_factory=dict)
    model: str = "csnn"
    model_options: dict = field(default_factory=dict)
    steps: int = 10
    encoder: str = "direct"
    encoder_options: dict = field(default_factory=dict)
    surrogate: str = "arctan"
    slope: float | None = None
    beta: float = 0.5
    learn_beta: bool = False
    threshold: float = 1.0
    reset: str = "subtract"
    loss: str = "ce_mem"
    predict: str = "count"
    optimiser: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    step_size: int = 10
    gamma: float = 0.5
    batch: int = 64
    epochs: int = 15
    patience: int = 0
    select: str = "last"
    clip_grad: float = 1.0
    label_smoothing: float = 0.0
    mixup: float = 0.0
    crop_s: float = 0.0
    class_weighting: str = "none"
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    sync_bn: bool = False  # SyncBatchNorm in a multi-process CUDA run (engine.train.distributed)
    limit: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self):
        for name in ("features", "augment", "model_options", "encoder_options"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise ConfigError(f"{name}: must be a table of options, not {value!r}")
            object.__setattr__(self, name, dict(value))  # own copy: callers cannot mutate it
        _check(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON- and TOML-safe plain dict (``slope = None`` is left out)."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}"
            )
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in d:
                kwargs[f.name] = _coerce(f, d[f.name], source)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def replace(self, **changes) -> RunConfig:
        """A copy with some fields changed (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict}


def _coerce(f: dataclasses.Field, value: Any, source: str) -> Any:
    kind = str(f.type).split("|")[0].strip()
    if value is None and "None" in str(f.type):
        return None
    want = _TYPES.get(kind)
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (
        want is not None
        and not isinstance(value, want)
        or (want is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{source}: {f.name} = {value!r} must be of type {kind}")
    return value


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"{name}: {value!r} is unknown; choose one of {', '.join(options)}")


def _check(c: RunConfig) -> None:
    from engine.models.registry import check_name as check_model
    from engine.neuro.surrogate import check_name

    check_model(c.model)
    check_name(c.surrogate)
    for f in dataclasses.fields(c):
        value = getattr(c, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{f.name}: {value} must be a finite number")
    _choice("encoder", c.encoder, ENCODERS)
    _choice("loss", c.loss, LOSSES)
    _choice("predict", c.predict, PREDICTIONS)
    _choice("optimiser", c.optimiser, OPTIMISERS)
    _choice("schedule", c.schedule, SCHEDULES)
    _choice("class_weighting", c.class_weighting, CLASS_WEIGHTING)
    _choice("select", c.select, SELECT)
    _choice("reset", c.reset, RESETS)
    _choice("amp", c.amp, AMP)
    positive = {"steps": c.steps, "batch": c.batch, "epochs": c.epochs, "step_size": c.step_size}
    for name, value in positive.items():
        if value < 1:
            raise ConfigError(f"{name}: {value} must be at least 1")
    for name, most in (("steps", 10_000), ("batch", 65_536), ("epochs", 100_000)):
        if getattr(c, name) > most:
            raise ConfigError(f"{name}: {getattr(c, name)} is more than {most}")
    for name in ("patience", "limit", "seed"):
        if getattr(c, name) < 0:
            raise ConfigError(f"{name}: {getattr(c, name)} must be 0 or more")
    if c.seed >= 2**32:
        raise ConfigError(f"seed: {c.seed} must be below 2**32")
    if not (c.lr > 0 and math.isfinite(c.lr)):
        raise ConfigError(f"lr: {c.lr} must be a positive number")
    if not 0.0 <= c.beta <= 1.0:
        raise ConfigError(f"beta: {c.beta} must lie in [0, 1] (membrane decay per step)")
    if c.threshold <= 0:
        raise ConfigError(f"threshold: {c.threshold} must be positive")
    if c.slope is not None and c.slope <= 0:
        raise ConfigError(f"slope: {c.slope} must be positive")
    for name in ("weight_decay", "clip_grad", "warmup_epochs"):
        if getattr(c, name) < 0:
            raise ConfigError(f"{name}: {getattr(c, name)} must be 0 or more")
    if not 0.0 <= c.label_smoothing < 1.0:
        raise ConfigError(f"label_smoothing: {c.label_smoothing} must lie in [0, 1)")
    if not 0.0 <= c.mixup <= 10.0:
        raise ConfigError(f"mixup: {c.mixup} must lie in [0, 10] (Beta alpha; 0 = off)")
    if not 0.0 <= c.crop_s <= 600.0:
        raise ConfigError(f"crop_s: {c.crop_s} must be 0 (whole clips) or a length in seconds")
    if not 0 < c.gamma <= 1:
        raise ConfigError(f"gamma: {c.gamma} must lie in (0, 1]")
    for name in ("val_fraction", "test_fraction"):
        if not 0.0 <= getattr(c, name) < 0.5:
            raise ConfigError(f"{name}: {getattr(c, name)} must lie in [0, 0.5)")
    if c.predict == "first_spike" and c.loss == "ce_mem":
        raise ConfigError("predict: first_spike needs a spike-count loss, not ce_mem")


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a run configuration from a TOML file (ConfigError naming the file on any problem)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            d = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{p}: not valid TOML (nested too deeply)") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    return RunConfig.from_dict(d, source=str(p))


def save_config(cfg: RunConfig, path: str | os.PathLike) -> None:
    """Write ``cfg`` as TOML (atomically: a temporary file, then rename)."""
    import tomli_w

    write_atomic(path, tomli_w.dumps(_toml_safe(cfg.to_dict())))


def _toml_safe(d: dict) -> dict:
    """Scalars before tables (TOML wants that) and no ``None`` (TOML has no null)."""
    scalars = {k: v for k, v in d.items() if v is not None and not isinstance(v, dict)}
    tables = {k: _toml_safe(v) for k, v in d.items() if isinstance(v, dict)}
    return {**scalars, **tables}
