"""The small-data recipe: its choices from the data, and the crops and mixup it adds to the loop."""

from __future__ import annotations

import digitkit
import numpy as np
import pytest
import soundfile as sf
import torch

from engine.audio.features import FeatureConfig
from engine.data.specs import open_source
from engine.errors import ConfigError
from engine.models.registry import twin_of
from engine.train.checkpoint import Predictor
from engine.train.config import RunConfig
from engine.train.crops import crop_frames, crop_starts, crop_views, mixup_batch, random_crops
from engine.train.loop import train
from engine.train.recipe import RECOMMENDED_MODEL, apply_recipe, recommend, with_recipe


def test_fsdd_recipe_keeps_fsdd_features_and_adds_the_regularisers(fsdd_dir):
    r = recommend(open_source(f"fsdd:{fsdd_dir}"))
    s = r.settings
    assert FeatureConfig.from_dict(s["features"]) == FeatureConfig()
    assert "crop_s" not in s  # 1 s clips are not cropped
    assert s["model"] == RECOMMENDED_MODEL and s["select"] == "best_loss" and s["patience"] > 0
    assert s["mixup"] > 0 and 0 < s["label_smoothing"] < 1
    assert s["augment"]["spec_time_mask"] == 6 and s["augment"]["spec_freq_mask"] == 2
    assert recommend(open_source(f"fsdd:{fsdd_dir}"), twin=True).settings["model"] == "cnn"


def test_long_wideband_clips_are_cropped_and_explicit_settings_win(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(2):
            sf.write(tmp_path / c / f"{i}.wav", np.zeros(5 * 22_050, np.float32), 22_050)
    source = open_source(f"folder:{tmp_path}")
    cfg, recipe = apply_recipe(RunConfig(data="x", epochs=2), source, {"epochs"})
    assert cfg.crop_s == 1.5 and cfg.epochs == 2 and cfg.features["duration"] == 5.0
    # environmental sound as log-mel: the deeper spiking CNN at few steps, its twin with --twin
    assert cfg.features["kind"] == "logmel" and (cfg.model, cfg.steps) == ("scnn_gap", 3)
    assert recommend(source, twin=True).settings["model"] == "cnn_gap"
    mine, _ = apply_recipe(RunConfig(data="x", steps=7), source, {"steps"})
    assert mine.steps == 7  # a step count the user gave wins
    assert any("1.5 s crops (130 frames)" in line for line in recipe.reasons)
    twin, _ = apply_recipe(RunConfig(data="x", model="csnn_avg"), source, {"model"}, twin=True)
    assert twin.model == "cnn" and twin.crop_s == cfg.crop_s and twin.features == cfg.features


def test_with_recipe_keeps_single_table_keys_and_clears_what_the_recipe_leaves(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        sf.write(tmp_path / c / "0.wav", np.zeros(8000, np.float32), 8000)
    speech = recommend(open_source(f"folder:{tmp_path}"))  # 1-s 8-kHz clips: no crops, csnn
    before = RunConfig(
        data="x", crop_s=1.5, steps=6, features={"duration": 2.0, "kind": "logmel"}, lr=0.01
    )
    mine = with_recipe(before, speech, {"features.duration", "augment.copies"})
    assert mine.features["duration"] == 2.0 and mine.features["kind"] == "mfcc"
    assert (mine.crop_s, mine.steps, mine.model) == (0.0, RunConfig().steps, "csnn")
    assert mine.lr == 0.01 and "copies" not in mine.augment
    assert with_recipe(mine, speech, twin=True).model == "cnn"
    assert with_recipe(RunConfig(model="srnn"), None, twin=True).model == "rnn"  # images


def test_images_get_no_recipe(mnist_dir):
    cfg = RunConfig(data="x")
    assert apply_recipe(cfg, open_source(f"mnist:{mnist_dir}")) == (cfg, None)


def test_twin_of_maps_spiking_models_and_refuses_the_rest():
    assert twin_of("csnn") == "cnn"
    with pytest.raises(ConfigError, match="'cnn' has no non-spiking twin"):
        twin_of("cnn")
    with pytest.raises(ConfigError, match="unknown"):
        twin_of("lenet")


def test_crop_helpers():
    fc = FeatureConfig(sample_rate=8000, hop_length=128).to_dict()
    assert crop_frames(0.048, fc, 8) == 4 and crop_frames(0.0, fc, 8) == 0
    assert crop_frames(5.0, fc, 8) == 0 and crop_frames(0.5, {"kind": "image"}, 8) == 0
    assert crop_starts(8, 4) == [0, 2, 4] and crop_starts(9, 4) == [0, 2, 4, 5]
    x = torch.arange(2 * 3 * 9, dtype=torch.float32).reshape(2, 1, 3, 9)
    views = crop_views(x, 4)
    assert [v.shape[-1] for v in views] == [4] * 4 and torch.equal(views[-1], x[..., 5:])
    g = torch.Generator().manual_seed(0)
    crops = random_crops(x, 4, g)
    for b in range(2):  # each example's crop is one contiguous window of its own frames
        start = int(crops[b, 0, 0, 0] - x[b, 0, 0, 0])
        assert torch.equal(crops[b], x[b, ..., start : start + 4])
    mixed, partner, lam = mixup_batch(x, 0.2, torch.Generator().manual_seed(1))
    again = mixup_batch(x, 0.2, torch.Generator().manual_seed(1))
    assert 0.5 <= lam <= 1 and torch.equal(mixed, again[0]) and torch.equal(partner, again[1])
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[partner])


@pytest.fixture(scope="module")
def digit_spectra():
    """scikit-learn's digits as 8-band, 8-frame 'spectrograms' (real data, audio timing)."""
    return digitkit.digit_spectra()


def _run(cfg, run_dir, data):
    gen = train(cfg, run_dir, data=data)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            return done.value


def test_crops_and_mixup_train_and_the_predictor_averages_over_crops(digit_spectra, tmp_path):
    cfg = RunConfig(
        model="cnn",
        epochs=3,
        batch=50,
        lr=5e-3,
        crop_s=0.048,  # 4 of the 8 frames
        mixup=0.2,
        label_smoothing=0.1,
        model_options={"channels": [6, 12], "kernels": [3, 3], "padding": "same"},
    )
    result = _run(cfg, tmp_path / "crop", digit_spectra)
    assert result.metrics["input_shape"] == [1, 8, 4]
    assert result.test_acc > 0.4, result.metrics["history"]  # chance is 0.1
    pred = Predictor.from_checkpoint(tmp_path / "crop" / "best.pt")
    idx = digit_spectra.splits["test"]
    labels = [p.index for p in pred.predict_batch(digit_spectra.x[idx])]  # whole 8-frame clips
    assert np.mean(np.asarray(labels) == digit_spectra.y[idx]) == pytest.approx(result.test_acc)
    # mixup reaches the loop: the same one-epoch run without it has another training loss
    mixed = _run(cfg.replace(epochs=1), tmp_path / "mixed", digit_spectra)
    plain = _run(cfg.replace(epochs=1, mixup=0.0), tmp_path / "plain", digit_spectra)
    assert plain.metrics["history"][0]["train_loss"] != mixed.metrics["history"][0]["train_loss"]
    with pytest.raises(ConfigError, match="mixup"):
        RunConfig(mixup=-1.0)


def test_small_sets_get_small_batches_more_epochs_and_keep_the_last_epoch(tmp_path):
    from engine.train.recipe import BATCH, MIN_STEPS, size_training, steps_per_epoch

    # a person's folder of 3 classes x 20 clips: 48 training clips, 6 validation clips
    small = size_training(60)
    assert small == {"batch": 8, "epochs": 50, "patience": 0, "select": "last"}
    assert steps_per_epoch(48, 8) * small["epochs"] >= MIN_STEPS
    # Kitchen20 (1,064 clips) and FSDD (3,000) keep the recipe they were measured with
    for n in (1064, 3000):
        assert size_training(n) == {
            "batch": BATCH,
            "epochs": 30,
            "patience": 6,
            "select": "best_loss",
        }
    # the loop counts the same steps (a last batch of one is dropped)
    assert [steps_per_epoch(n, 8) for n in (16, 17, 18)] == [2, 2, 3]
    for c in ("a", "b", "c"):
        (tmp_path / c).mkdir()
        for i in range(20):
            sf.write(tmp_path / c / f"{i}.wav", np.zeros(8000, np.float32), 8000)
    cfg, recipe = apply_recipe(RunConfig(data="x"), open_source(f"folder:{tmp_path}"))
    assert (cfg.batch, cfg.epochs, cfg.select, cfg.patience) == (8, 50, "last", 0)
    assert any("batches of 8" in line for line in recipe.reasons)
    mine, _ = apply_recipe(
        RunConfig(data="x", batch=32), open_source(f"folder:{tmp_path}"), {"batch"}
    )
    assert mine.batch == 32  # a batch the user gave wins


def test_small_sets_of_short_clips_are_trimmed_long_ones_cropped(tmp_path):
    for c in ("a", "b", "c"):
        (tmp_path / c).mkdir()
        for i in range(20):
            sf.write(tmp_path / c / f"{i}.wav", np.zeros(8000, np.float32), 8000)
    cfg, _ = apply_recipe(RunConfig(data="x"), open_source(f"folder:{tmp_path}"))
    assert cfg.features["trim_silence"] and cfg.crop_s == 0
    long = tmp_path / "long"
    for c in ("a", "b"):
        (long / c).mkdir(parents=True)
        for i in range(20):
            sf.write(long / c / f"{i}.wav", np.zeros(5 * 22_050, np.float32), 22_050)
    cfg, _ = apply_recipe(RunConfig(data="x"), open_source(f"folder:{long}"))
    assert cfg.crop_s == 1.5 and not cfg.features["trim_silence"]
    # a large set keeps its clips as they are (FSDD's recipe is unchanged)
    big = tmp_path / "big"
    for c in ("a", "b"):
        (big / c).mkdir(parents=True)
        for i in range(200):
            sf.write(big / c / f"{i}.wav", np.zeros(8000, np.float32), 8000)
    cfg, _ = apply_recipe(RunConfig(data="x"), open_source(f"folder:{big}"))
    assert not cfg.features["trim_silence"] and cfg.select == "best_loss"
