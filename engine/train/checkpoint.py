"""Checkpoints: safe to load, written atomically, enough to resume a run or to predict.

Format (version 1): a ``torch.save`` zip whose pickle holds only a dict of strings, numbers,
lists, dicts and tensors, so it loads with ``torch.load(weights_only=True)``, which refuses any
other object (no code runs on load). Keys:

- ``format`` = ``"snn-explorer-checkpoint"``, ``version`` = 1
- ``config``: the RunConfig as JSON; ``model``: JSON ``{"name", "input_shape", "n_classes",
  "options"}`` (``build_model`` arguments); ``class_names``: JSON list; ``feature_config``:
  JSON (engine.audio.features.FeatureConfig.to_dict(), or null); ``metrics``: JSON (history so far);
  ``state``: JSON (epoch, batch within the epoch, step, best accuracy, accumulators)
- ``weights``: the model's state_dict; ``optimizer``: the optimiser's state_dict (may be empty);
  ``rng``: dict of uint8 tensors (generator states)

A file that is not such a checkpoint, or one of another version, raises a one-line
:class:`engine.errors.CheckpointError`.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.atomic import write_with
from engine.errors import CheckpointError, SnnError
from engine.train.crops import crop_views

FORMAT = "snn-explorer-checkpoint"
VERSION = 1
_JSON_KEYS = ("config", "model", "class_names", "feature_config", "metrics", "state")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint (tensors on the CPU)."""

    path: str
    version: int
    config: dict
    model: dict  # {"name", "input_shape", "n_classes", "options"}
    class_names: list[str]
    feature_config: dict | None
    metrics: dict
    state: dict
    weights: dict
    optimizer: dict = field(default_factory=dict)
    rng: dict = field(default_factory=dict)

    def run_config(self):
        from engine.train.config import RunConfig

        return RunConfig.from_dict(self.config, source=f"{self.path} (config)")

    def build(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The model with its trained weights, in eval mode."""
        from engine.models.registry import build_model

        spec = self.model
        try:
            model = build_model(
                spec["name"], tuple(spec["input_shape"]), int(spec["n_classes"]), **spec["options"]
            )
            model.load_state_dict(self.weights)
        except SnnError as exc:
            raise CheckpointError(f"{self.path}: {exc}") from None
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{self.path}: the weights do not fit model {spec.get('name')!r} ({_short(exc)})"
            ) from None
        return model.to(device).eval()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def save_checkpoint(
    path: str | os.PathLike,
    *,
    config: dict,
    model: dict,
    class_names: list[str],
    weights: dict,
    feature_config: dict | None = None,
    metrics: dict | None = None,
    state: dict | None = None,
    optimizer: dict | None = None,
    rng: dict | None = None,
) -> Path:
    """Write a checkpoint atomically (:func:`engine.atomic.write_with`).

    A crash mid-write leaves the previous checkpoint intact.
    """
    p = Path(path)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps(config, sort_keys=True),
        "model": json.dumps(model, sort_keys=True),
        "class_names": json.dumps(list(class_names)),
        "feature_config": json.dumps(feature_config),
        "metrics": json.dumps(metrics or {}, allow_nan=True),
        "state": json.dumps(state or {}, allow_nan=True),
        "weights": {k: v.detach().cpu() for k, v in weights.items()},
        "optimizer": optimizer or {},
        "rng": rng or {},
    }
    try:
        write_with(p, lambda tmp: torch.save(payload, tmp))
    except (OSError, RuntimeError) as exc:
        raise CheckpointError(f"{p}: cannot write the checkpoint ({_short(exc)})") from None
    return p


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a checkpoint without unpickling arbitrary objects (CheckpointError otherwise)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    if not zipfile.is_zipfile(p):
        raise CheckpointError(f"{p}: not an snn-explorer checkpoint (not a torch zip file)")
    try:  # torch's reader skips the CRCs: a flipped byte in a tensor would load silently
        with zipfile.ZipFile(p) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{p}: damaged checkpoint ({_short(exc)})") from None
    if bad is not None:
        raise CheckpointError(f"{p}: damaged checkpoint (member {bad} fails its CRC check)")
    try:
        raw = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the same user error
        raise CheckpointError(
            f"{p}: not a loadable snn-explorer checkpoint ({_short(exc)})"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not an snn-explorer checkpoint (no format marker)")
    version = raw.get("version")
    if version != VERSION:
        raise CheckpointError(
            f"{p}: checkpoint format version {version!r}; this snn-explorer reads version "
            f"{VERSION} (use the snn-explorer that wrote it, or retrain)"
        )
    try:
        parts = {k: json.loads(raw[k]) for k in _JSON_KEYS}
        weights = raw["weights"]
        if not isinstance(weights, dict) or not all(
            isinstance(v, torch.Tensor) for v in weights.values()
        ):
            raise ValueError("weights are not a dict of tensors")
        _check_parts(parts)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{p}: damaged checkpoint ({_short(exc)})") from None
    return Checkpoint(
        path=str(p),
        version=int(version),
        weights=weights,
        optimizer=raw.get("optimizer") or {},
        rng=raw.get("rng") or {},
        **parts,
    )


def _check_parts(parts: dict) -> None:
    """The JSON parts have the shapes the rest of the app relies on (ValueError otherwise)."""
    from engine.models.registry import MODELS
    from engine.train.config import RunConfig

    spec = parts["model"]
    if not isinstance(spec, dict):
        raise ValueError("model spec is not a table")
    if spec.get("name") not in MODELS:
        raise ValueError(f"unknown model {spec.get('name')!r}")
    shape = spec.get("input_shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
        raise ValueError(f"input shape {shape!r} is not [channels, height, width]")
    n = spec.get("n_classes")
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ValueError(f"n_classes {n!r} is not a number of classes")
    if not isinstance(spec.get("options"), dict):
        raise ValueError("model options are not a table")
    names = parts["class_names"]
    if not isinstance(names, list) or len(names) != n or not all(isinstance(c, str) for c in names):
        raise ValueError(f"class names are not a list of {n} names")
    if parts["feature_config"] is not None and not isinstance(parts["feature_config"], dict):
        raise ValueError("feature config is not a table")
    for key in ("config", "metrics", "state"):
        if not isinstance(parts[key], dict):
            raise ValueError(f"{key} is not a table")
    try:
        RunConfig.from_dict(parts["config"], source="config")
    except SnnError as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class Prediction:
    """One classified input."""

    label: str
    index: int
    probs: np.ndarray  # [C] float32, softmax of the loss's logits (spike counts for SNNs)
    output_spikes: np.ndarray | None  # [T, C] uint8 for spiking models, else None


class Predictor:
    """A trained model plus everything needed to classify raw audio (or images) with it.

    Used by ``snn-explorer classify``, the Live tab and export.
    """

    def __init__(self, ckpt: Checkpoint, device: str | torch.device = "cpu"):
        from engine.models.registry import is_spiking

        self.checkpoint = ckpt
        self.device = torch.device(device)
        self.class_names = list(ckpt.class_names)
        self.input_shape = tuple(ckpt.model["input_shape"])
        self._feature_dict = ckpt.feature_config
        try:
            self.config = ckpt.run_config()
            self.model = ckpt.build(self.device)
            self._features = self._check_features()
        except CheckpointError:
            raise
        except SnnError as exc:
            raise CheckpointError(f"{ckpt.path}: {exc}") from None
        self.spiking = is_spiking(self.model)

    def _check_features(self):
        """The stored feature settings, checked against the model's input shape."""
        if self._feature_dict is None:
            return None
        from engine.audio.features import FeatureConfig

        try:
            cfg = FeatureConfig.from_dict(self._feature_dict)
        except (TypeError, ValueError) as exc:
            raise SnnError(f"feature config: {_short(exc)}") from None
        cropped = self.config.crop_s > 0 and self.input_shape[1] == cfg.n_features
        fits = tuple(self.input_shape[1:]) == tuple(cfg.shape()) or cropped
        if cfg.kind != "image" and not fits:
            raise SnnError(
                f"its feature settings give {cfg.shape()} features, the model takes "
                f"{self.input_shape[1:]}"
            )
        return cfg

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "cpu") -> Predictor:
        return cls(load_checkpoint(path), device)

    @property
    def feature_config(self):
        """The ``engine.audio.features.FeatureConfig`` the model was trained on (None if unknown)."""
        return self._features

    @property
    def chance_note(self) -> str:
        """Why answers may all be ``unknown``: one line when the model tested no better than
        chance on its validation split (``engine.train.chance``), else ``""``."""
        from engine.train.chance import warning_from_checkpoint

        warning = warning_from_checkpoint(self.checkpoint)
        if not warning:
            return ""
        return f"{warning}; until then most answers will be 'unknown' or wrong"

    @property
    def is_image(self) -> bool:
        return bool(self._feature_dict and self._feature_dict.get("kind") == "image")

    @torch.no_grad()
    def predict_batch(self, x: np.ndarray) -> list[Prediction]:
        """Classify features ``[N, C, H, W]`` (or ``[N, H, W]``) shaped as in training."""
        from engine.models.registry import class_scores, run_model

        x = np.asarray(x, dtype=np.float32)
        if x.ndim == len(self.input_shape):
            x = x[:, None]
        whole = self.config.crop_s > 0 and x.shape[-1] > self.input_shape[-1]
        if tuple(x.shape[1:]) != self.input_shape and not whole:
            raise SnnError(
                f"input of shape {tuple(x.shape[1:])} does not fit this model, which takes "
                f"{self.input_shape}; use the feature settings stored in the checkpoint"
            )
        c = self.config
        gen = torch.Generator(device=self.device).manual_seed(c.seed)
        xt = torch.from_numpy(x).to(self.device)
        views = crop_views(xt, self.input_shape[-1] if whole else 0)
        logits = decision = 0.0
        for view in views:  # a model trained on crops: mean scores over the clip's crops
            out = run_model(self.model, view, c.steps, c.encoder, c.encoder_options, generator=gen)
            parts = class_scores(out, c.loss, c.predict)
            logits, decision = logits + parts[0] / len(views), decision + parts[1] / len(views)
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
        pred = decision.argmax(1).cpu().numpy()
        spikes = out.spikes.cpu().numpy().astype(np.uint8) if self.spiking else None
        return [
            Prediction(
                label=self.class_names[int(pred[i])],
                index=int(pred[i]),
                probs=probs[i].astype(np.float32),
                output_spikes=None if spikes is None else spikes[:, i, :],
            )
            for i in range(len(x))
        ]

    def predict_features(self, x: np.ndarray) -> Prediction:
        """Classify one feature matrix ``[H, W]`` or ``[C, H, W]``."""
        return self.predict_batch(np.asarray(x, dtype=np.float32)[None])[0]

    def predict_waveform(self, y: np.ndarray, sr: int) -> Prediction:
        """Classify a mono waveform at rate ``sr`` (resampled and cut as in training)."""
        from engine.audio.features import compute_features, prepare_clip

        cfg = self.feature_config
        if cfg is None or cfg.kind == "image":
            raise SnnError("this checkpoint's model takes images, not audio")
        return self.predict_features(compute_features(prepare_clip(y, sr, cfg), cfg))

    def predict_file(self, path: str | os.PathLike) -> Prediction:
        """Classify an audio file (or an image file for an image model)."""
        if self.is_image:
            return self.predict_features(load_image(path, self.input_shape[1:]))
        from engine.audio.features import features_from_file

        cfg = self.feature_config
        if cfg is None:
            raise SnnError("this checkpoint stores no feature settings; it cannot read files")
        return self.predict_features(features_from_file(path, cfg))


def load_image(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """A grayscale image file (PNG, JPEG...) or a ``.npy`` array as float32 ``[H, W]`` in [0, 1]."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".npy":
            a = np.load(p, allow_pickle=False).astype(np.float32)
            a = a / 255.0 if a.max() > 1.0 else a
        else:
            from PIL import Image

            with Image.open(p) as im:
                im = im.convert("L")
                if im.size != (size[1], size[0]):
                    im = im.resize((size[1], size[0]))
                a = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, ValueError) as exc:
        raise SnnError(f"{p}: cannot read the image ({_short(exc)})") from None
    if a.shape != tuple(size):
        raise SnnError(f"{p}: image of shape {a.shape}; this model takes {tuple(size)}")
    return a
