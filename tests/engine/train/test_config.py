"""RunConfig: TOML round trip and one-line errors naming the key."""

from __future__ import annotations

import pytest

from engine.errors import ConfigError
from engine.train.config import RunConfig, load_config, save_config


def test_toml_round_trip_keeps_every_field(tmp_path):
    cfg = RunConfig(
        data="fsdd:/x",
        model="csnn_avg",
        steps=7,
        encoder="rate",
        encoder_options={"gain": 0.5},
        features={"n_mfcc": 13, "fmax": None},
        model_options={"channels": [8, 16], "kernels": [3, 3], "pooling": "avg"},
        augment={"spec_time_mask": 5},
        slope=3.0,
        lr=0.01,
        class_weighting="balanced_sampling",
    )
    path = tmp_path / "run.toml"
    save_config(cfg, path)
    back = load_config(path)
    # TOML has no null: fmax = None is left out, which FeatureConfig reads as its default None
    assert back == cfg.replace(features={"n_mfcc": 13})
    assert "channels = [" in path.read_text()


def test_defaults_round_trip_with_no_slope(tmp_path):
    path = tmp_path / "d.toml"
    save_config(RunConfig(), path)
    assert load_config(path) == RunConfig()
    assert "slope" not in path.read_text()


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('model = "csnn"\nlrr = 0.1\n')
    with pytest.raises(ConfigError, match=r"bad\.toml: unknown key 'lrr'"):
        load_config(path)


@pytest.mark.parametrize(
    "text, match",
    [
        ('steps = "many"', "steps = 'many' must be of type int"),
        ("steps = 0", "steps: 0 must be at least 1"),
        ("beta = 1.5", r"beta: 1.5 must lie in \[0, 1\]"),
        ('encoder = "morse"', "encoder: 'morse' is unknown"),
        ('surrogate = "relu"', "surrogate: 'relu' is unknown"),
        ("lr = -1", "lr: -1.0 must be a positive number"),
        ("batch = true", "batch = True must be of type int"),
        ("features = 3", "features = 3 must be of type dict"),
        ('select = "best"', "select: 'best' is unknown; choose one of last, best_val"),
        ("label_smoothing = 1.0", r"label_smoothing: 1.0 must lie in \[0, 1\)"),
    ],
)
def test_bad_values_give_one_line_errors(tmp_path, text, match):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_not_toml_and_missing_file(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml")


def test_int_given_for_float_is_accepted_and_replace_ignores_none():
    cfg = RunConfig.from_dict({"lr": 1, "threshold": 2})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.replace(lr=None, steps=3) == RunConfig(lr=1.0, threshold=2.0, steps=3)


def test_option_tables_are_private_copies():
    opts = {"pooling": "avg"}
    cfg = RunConfig(model_options=opts)
    opts["pooling"] = "max"
    assert cfg.model_options == {"pooling": "avg"}
