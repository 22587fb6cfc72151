"""A sweep's search space: SPACE.toml parsed, checked against the run config, applied to it.

SPACE.toml names run-config fields by dotted key (``lr``, ``beta``, ``steps``,
``features.n_mfcc``, ``augment.spec_time_mask``, ``model_options.hidden``...), each with a range
or a list of choices::

    lr = {low = 1e-4, high = 1e-2, log = true}
    steps = {low = 10, high = 40, step = 5}
    beta = {low = 0.5, high = 0.95}
    features.n_mfcc = {choices = [13, 20, 30]}

(``[features]`` tables with ``n_mfcc = {...}`` inside say the same.) An unknown key, an empty
range or a value the run config refuses raises :class:`engine.errors.ConfigError` naming the
file and the key.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.train.config import RunConfig

#: run-config tables whose entries a space may name as ``TABLE.key``
TABLES = ("features", "augment", "model_options", "encoder_options")
_RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class SpaceParam:
    """One searched parameter: ``low..high`` (``log``, ``step``) or one of ``choices``."""

    key: str  # dotted run-config key
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    @property
    def is_int(self) -> bool:
        return not self.choices and all(
            isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high)
        )

    def distribution(self):
        """The optuna distribution of this parameter."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.choices:
            return CategoricalDistribution(list(self.choices))
        if self.is_int:
            return IntDistribution(self.low, self.high, log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def to_dict(self) -> dict:
        if self.choices:
            return {"choices": list(self.choices)}
        d = {"low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        if self.step is not None:
            d["step"] = self.step
        return d


def load_space(path: str | os.PathLike, base: RunConfig) -> tuple[SpaceParam, ...]:
    """Read and check SPACE.toml against the base run config (ConfigError naming file and key)."""
    from engine.train.config import tomllib

    p = Path(path)
    try:
        with p.open("rb") as fh:
            d = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such space file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    return parse_space(d, base, source=str(p))


def parse_space(d: dict, base: RunConfig, source: str = "space") -> tuple[SpaceParam, ...]:
    """The parameters of a space given as a (nested) dict; see :func:`load_space`."""
    leaves: list[tuple[str, Any]] = []
    try:
        _flatten(d, "", leaves)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if not leaves:
        raise ConfigError(
            f"{source}: no parameters to search (e.g. lr = {{low = 1e-4, high = 1e-2}})"
        )
    params = []
    for key, spec in leaves:
        try:
            param = _param(key, spec, base)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {key}: {exc}") from None
        for value in _endpoints(param):
            apply_params(base, {key: value}, source=f"{source}: {key} = {value!r}")
        params.append(param)
    return tuple(params)


def _flatten(d: dict, prefix: str, out: list) -> None:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and ("choices" in v or "low" in v or "high" in v):
            out.append((key, v))
        elif isinstance(v, dict):
            if not v:
                raise ConfigError(f"{key}: empty table; give a range or choices")
            _flatten(v, key + ".", out)
        else:
            raise ConfigError(
                f"{key}: give a range {{low = , high = }} or {{choices = [...]}}, not {v!r}"
            )


def _param(key: str, spec: dict, base: RunConfig) -> SpaceParam:
    _check_key(key, base)
    if "choices" in spec:
        extra = sorted(set(spec) - {"choices"})
        if extra:
            raise ConfigError(f"choices cannot be combined with {', '.join(extra)}")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError("choices is empty; list at least one value")
        if any(isinstance(c, (list, dict)) for c in choices):
            raise ConfigError("choices must be plain values (numbers, strings, booleans)")
        return SpaceParam(key, choices=tuple(choices))
    unknown = sorted(set(spec) - _RANGE_KEYS)
    if unknown:
        raise ConfigError(f"unknown range option {unknown[0]!r} (use low, high, log, step)")
    if "low" not in spec or "high" not in spec:
        raise ConfigError("a range needs both low and high")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    for name, v in (("low", low), ("high", high), ("step", step)):
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
        ):
            raise ConfigError(f"{name} = {v!r} must be a finite number")
    if not isinstance(log, bool):
        raise ConfigError(f"log = {log!r} must be true or false")
    if not high > low:
        raise ConfigError(f"the range [{low}, {high}] is empty (high must exceed low)")
    if log and low <= 0:
        raise ConfigError(f"log = true needs low > 0, not {low}")
    if log and step is not None:
        raise ConfigError("log and step cannot be combined")
    if step is not None and (step <= 0 or step > high - low):
        raise ConfigError(f"step = {step} must be positive and at most high - low")
    if _wants_int(key, base) and not all(
        isinstance(v, int) for v in (low, high, step if step is not None else 1)
    ):
        raise ConfigError(f"{key} is a whole number: give whole low, high and step")
    if _wants_float(key, base):
        low, high = float(low), float(high)
    return SpaceParam(key, low, high, log, step)


def _field_types(key: str, base: RunConfig) -> dict[str, str]:
    """Field name -> type text of the dataclass behind ``key``'s table (empty when unknown)."""
    top, _, _ = key.partition(".")
    if top == "features":
        from engine.audio.features import FeatureConfig

        return {f.name: str(f.type) for f in dataclasses.fields(FeatureConfig)}
    if top == "augment":
        from engine.audio.augment import AugmentConfig

        return {f.name: str(f.type) for f in dataclasses.fields(AugmentConfig)}
    if top in TABLES:
        return {}
    return {f.name: str(f.type) for f in dataclasses.fields(RunConfig)}


def _type_of(key: str, base: RunConfig) -> str:
    return _field_types(key, base).get(key.rpartition(".")[2], "")


def _wants_int(key: str, base: RunConfig) -> bool:
    return _type_of(key, base).split("|")[0].strip() == "int"


def _wants_float(key: str, base: RunConfig) -> bool:
    return _type_of(key, base).split("|")[0].strip() == "float"


def _check_key(key: str, base: RunConfig) -> None:
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    top, dot, sub = key.partition(".")
    if top not in fields:
        raise ConfigError(f"unknown key; run-config keys are {', '.join(sorted(fields))}")
    if top in TABLES and not dot:
        raise ConfigError(f"name an entry of [{top}], e.g. {top}.NAME")
    if top not in TABLES and dot:
        raise ConfigError(f"{top} is not a table; only {', '.join(TABLES)} take dotted keys")
    if top in ("data", "device", "seed"):
        raise ConfigError(f"{top} is fixed for the whole sweep (set it in the base config)")
    if not dot:
        return
    if "." in sub:
        raise ConfigError("one level of nesting only (TABLE.key)")
    known = set(_field_types(key, base))
    if top == "model_options":
        known = _model_option_names(base.model)
    if known and sub not in known:
        raise ConfigError(f"unknown key; [{top}] takes {', '.join(sorted(known))}")


def _model_option_names(model: str) -> set[str]:
    """Keyword options the model class takes (empty = not known: not checked here)."""
    from engine.models.ann import CNN
    from engine.models.snn import CSNN, FCSNN

    cls = {"fc_snn": FCSNN, "csnn": CSNN, "csnn_avg": CSNN, "cnn": CNN}.get(model)
    if cls is None:
        return set()
    names = set(inspect.signature(cls.__init__).parameters) - {"self", "input_shape", "n_classes"}
    return {n for n in names if not n.startswith("_")}


def _endpoints(p: SpaceParam) -> list:
    return list(p.choices) if p.choices else [p.low, p.high]


def apply_params(base: RunConfig, params: dict[str, Any], source: str = "sweep") -> RunConfig:
    """``base`` with the dotted ``params`` set (ConfigError, starting with ``source``, when the
    result is not a valid run config)."""
    d = base.to_dict()
    for key, value in params.items():
        top, dot, sub = key.partition(".")
        if dot:
            d[top] = {**d.get(top, {}), sub: value}
        else:
            d[top] = value
    cfg = RunConfig.from_dict(d, source=source)
    try:
        if cfg.features:
            from engine.audio.features import FeatureConfig

            FeatureConfig.from_dict(cfg.features)
        if cfg.augment:
            from engine.audio.augment import AugmentConfig

            AugmentConfig.from_dict(cfg.augment)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg
