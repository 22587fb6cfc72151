"""The recipe for small real sound sets: run settings chosen from the data's size and clip length.

``recommend(source)`` returns the :class:`RunConfig` fields the recipe sets (see
``docs/recipe.md`` for why each is there):

- features proposed from the data (``engine.audio.feature_proposal``);
- random crops of ``CROP_S`` seconds when clips are ``LONG_CLIP_S`` or longer (the model is
  smaller and sees more distinct examples; the test averages the class scores over crops);
- SpecAugment masks (a tenth of the frames the model sees, an eighth of the bands), mixup
  (Beta(0.2, 0.2)) and label smoothing 0.1 when the set is small (under ``SMALL_SET`` clips);
- early stopping (``patience``) on a validation split that never shares a group with training,
  keeping the epoch with the lowest validation loss (``select = "best_loss"``).

``apply_recipe(cfg, source, explicit)`` fills in every field the user did not set. Image data
sets (MNIST) get no recipe: today's defaults suit them. ``with_recipe(cfg, recipe, explicit)``
is its second half, for a recipe made in the background (the Training tab's ``recipe_job``):
the command line and the Training tab fill a run in the same way.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from engine.audio.feature_proposal import FeatureProposal, propose_for_source
from engine.data.specs import open_source
from engine.models.registry import twin_of
from engine.train.config import RunConfig
from engine.train.crops import crop_frames

#: the model ``snn-explorer train --data SPEC --out DIR`` trains on short narrow-band clips
#: (speech: 20 MFCCs), where the report's CSNN is level with its CNN twin (FSDD 97-98 %)
RECOMMENDED_MODEL = "csnn"
#: the model for log-mel spectrograms of environmental sound (long or wide-band clips): the
#: deeper spiking CNN with global average pooling, at ``SPECTROGRAM_STEPS`` time steps
#: (Kitchen20's five folds, two seeds, docs/recipe.md: 60.4 % at 3 steps, 60.2 % at 6, against
#: its twin's 62.8 %; 3 steps train in half the time of 6, about 2.5x the twin's)
RECOMMENDED_FOR_SPECTROGRAMS = "scnn_gap"
SPECTROGRAM_STEPS = 3
#: data sets with fewer clips than this get the regularisers (SpecAugment, mixup, smoothing)
SMALL_SET = 20_000
#: clips at least this long (s) are trained on crops
LONG_CLIP_S = 3.0
#: crop length (s)
CROP_S = 1.5
MIXUP_ALPHA = 0.2
LABEL_SMOOTHING = 0.1
#: epochs and early-stopping patience of the recipe
EPOCHS = 30
PATIENCE = 6
#: the batch of larger sets; a small set gets a smaller one (at least ``MIN_BATCH``) so that an
#: epoch holds about ``BATCHES_PER_EPOCH`` optimiser steps: with 48 training clips a batch of
#: 64 made one step per epoch and the spiking network stayed at chance (docs/recipe.md)
BATCH = 64
MIN_BATCH = 8
BATCHES_PER_EPOCH = 6
#: optimiser steps a run gets at least: small sets train for more epochs (at most MAX_EPOCHS)
MIN_STEPS = 300
MAX_EPOCHS = 200
#: a validation split of fewer clips cannot pick an epoch or stop a run (a few clips per
#: class move in steps of 10-30 %): the run trains its whole schedule and keeps the last epoch
SMALL_VALIDATION = 30


@dataclass(frozen=True)
class Recipe:
    """The fields the recipe sets (``settings``) and one line per choice (``reasons``)."""

    settings: dict
    reasons: tuple[str, ...]
    proposal: FeatureProposal | None

    def describe(self) -> str:
        return "; ".join(self.reasons)


def recommended_model(feature_kind: str) -> str:
    """The spiking model the recipe trains on features of ``feature_kind`` (mfcc, logmel...)."""
    return RECOMMENDED_FOR_SPECTROGRAMS if feature_kind == "logmel" else RECOMMENDED_MODEL


def recommend(source, *, twin: bool = False) -> Recipe | None:
    """The recipe for an opened data source (``None`` for image data sets).

    The model is :func:`recommended_model` of the proposed features; ``twin`` picks its
    non-spiking twin with everything else equal.
    """
    proposal = propose_for_source(source)
    if proposal is None:
        return None
    fc = proposal.config
    spiking = recommended_model(fc.kind)
    s: dict = {"model": twin_of(spiking) if twin else spiking, "features": _plain(fc.to_dict())}
    reasons = [proposal.describe()]
    if spiking == RECOMMENDED_FOR_SPECTROGRAMS:
        s["steps"] = SPECTROGRAM_STEPS
        reasons.append(
            f"log-mel spectrograms: {spiking} (a deeper spiking CNN with global average pooling), "
            f"{SPECTROGRAM_STEPS} time steps"
        )
    else:
        reasons.append(f"MFCCs of short narrow-band clips (speech): {spiking}, the report's CSNN")
    frames = fc.frames()
    if fc.duration >= LONG_CLIP_S:
        s["crop_s"] = CROP_S
        frames = crop_frames(CROP_S, fc.to_dict(), frames) or frames
        reasons.append(
            f"{fc.duration:g} s clips: trained on random {CROP_S:g} s crops ({frames} frames), "
            "tested on the mean over overlapping crops"
        )
    n = len(source.items)
    if n < SMALL_SET:
        s["augment"] = {
            "spec_time_mask": max(2, frames // 10),
            "spec_freq_mask": max(2, fc.n_features // 8),
            "spec_masks": 2,
        }
        s["mixup"] = MIXUP_ALPHA
        s["label_smoothing"] = LABEL_SMOOTHING
        reasons.append(
            f"{n} clips is a small set: SpecAugment (2 masks of up to {frames // 10 or 2} frames "
            f"and {max(2, fc.n_features // 8)} bands), mixup {MIXUP_ALPHA:g}, label smoothing "
            f"{LABEL_SMOOTHING:g}"
        )
    sizing = size_training(n)
    s.update(sizing)
    if sizing["select"] == "last" and "crop_s" not in s:
        s["features"]["trim_silence"] = True
        reasons.append(
            "a small set of short clips: silence trimmed from each clip's ends, so every sound "
            f"sits in its {fc.duration:g} s ({fc.align}) as listen places what it hears"
        )
    if sizing["batch"] < BATCH:
        reasons.append(
            f"about {training_clips(n)} training clips: batches of {sizing['batch']} (an epoch "
            f"of {steps_per_epoch(training_clips(n), sizing['batch'])} steps), {sizing['epochs']} "
            f"epochs for at least {MIN_STEPS} optimiser steps"
        )
    if sizing["select"] == "last":
        reasons.append(
            f"a validation split of about {validation_clips(n)} clips is too small to choose an "
            "epoch: the whole cosine schedule is trained and the last epoch is kept"
        )
    else:
        reasons.append(
            f"up to {sizing['epochs']} epochs, stopping after {PATIENCE} with neither a better "
            "validation accuracy nor a lower validation loss (validation never shares a group "
            "with training); the epoch with the lowest validation loss is tested"
        )
    return Recipe(s, tuple(reasons), proposal)


def training_clips(n: int, val_fraction: float = 0.1, test_fraction: float = 0.1) -> int:
    """About how many of ``n`` clips the default splits train on."""
    return max(2, round(n * (1.0 - val_fraction - test_fraction)))


def validation_clips(n: int, val_fraction: float = 0.1) -> int:
    return round(n * val_fraction)


def steps_per_epoch(n_train: int, batch: int) -> int:
    """Optimiser steps of an epoch, as the loop counts them (a last batch of one is dropped)."""
    return max(1, n_train // batch + (1 if n_train % batch > 1 else 0))


def size_training(n: int) -> dict:
    """Batch, epochs, patience and kept epoch for a set of ``n`` clips (default splits).

    The batch is the largest power of two that gives an epoch ``BATCHES_PER_EPOCH`` steps,
    between ``MIN_BATCH`` and ``BATCH``; the epochs are ``EPOCHS`` or as many as make
    ``MIN_STEPS`` steps (at most ``MAX_EPOCHS``). Sets whose validation split has fewer than
    ``SMALL_VALIDATION`` clips train every epoch and keep the last (no early stop).
    """
    n_train = training_clips(n)
    batch = BATCH
    while batch > MIN_BATCH and n_train < batch * BATCHES_PER_EPOCH:
        batch //= 2
    epochs = min(MAX_EPOCHS, max(EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch(n_train, batch))))
    if validation_clips(n) < SMALL_VALIDATION:
        return {"batch": batch, "epochs": epochs, "patience": 0, "select": "last"}
    return {"batch": batch, "epochs": epochs, "patience": PATIENCE, "select": "best_loss"}


#: the run settings a recipe may set; those it leaves out this time return to their defaults
RECIPE_KEYS = (
    "model",
    "features",
    "steps",
    "crop_s",
    "augment",
    "mixup",
    "label_smoothing",
    "epochs",
    "patience",
    "select",
    "batch",
)


def with_recipe(
    cfg: RunConfig,
    recipe: Recipe | None,
    explicit: set[str] | frozenset[str] = frozenset(),
    *,
    twin: bool = False,
) -> RunConfig:
    """``cfg`` with ``recipe``'s settings (from ``recommend(source)``) for every field not in
    ``explicit``; with ``twin`` the model becomes its non-spiking twin, all else equal.

    ``explicit`` holds field names (``"epochs"``) or, for the tables ``features`` and
    ``augment``, single keys (``"features.duration"``): those keep ``cfg``'s value while the
    rest of the table comes from the recipe. A field of ``RECIPE_KEYS`` the recipe does not set
    (no crops for short clips...) returns to its default, so a recipe made for other data
    leaves nothing behind. ``recipe`` None (image data): only the twin changes.
    """
    changes: dict = {}
    if recipe is not None:
        default = RunConfig()
        for key in RECIPE_KEYS:
            if key in explicit:
                continue
            value = recipe.settings.get(key, getattr(default, key))
            if isinstance(value, dict):
                mine = {k.split(".", 1)[1] for k in explicit if k.startswith(key + ".")}
                have = getattr(cfg, key)
                value = {k: v for k, v in value.items() if k not in mine}
                value.update({k: have[k] for k in mine if k in have})
            changes[key] = value
    if twin:
        changes["model"] = twin_of(changes.get("model", cfg.model))
    return dataclasses.replace(cfg, **changes)


def apply_recipe(
    cfg: RunConfig, source, explicit: set[str] | frozenset[str] = frozenset(), twin: bool = False
) -> tuple[RunConfig, Recipe | None]:
    """``cfg`` with the recipe's settings for every field not in ``explicit`` (those the user
    set; see :func:`with_recipe`). Returns the new config and the recipe (``None`` for image
    data: ``cfg`` unchanged but for the twin)."""
    recipe = recommend(source)
    return with_recipe(cfg, recipe, explicit, twin=twin), recipe


def _plain(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def recipe_job(spec: str, stop=None):
    """Generator for a GUI worker: opens ``spec`` (reading every file's header) and returns its
    :class:`Recipe` (``None`` for image data), for :func:`with_recipe`. Yields one progress
    line first."""
    yield f"reading the clips of {spec}"
    return recommend(open_source(spec))
