"""Fuzzing the configuration readers: run configs (TOML), feature, augmentation, model, AudioSet
selection and download settings. Each input ends in a valid config or a one-line ConfigError
(naming the file, for files); nothing else escapes, and no string in a config is ever run.

Derandomized hypothesis (the same inputs on every run); totals are printed at the end of the
module (``pytest -s``) and added to ``$SNN_FUZZ_TALLY`` when set.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from fuzzkit import fuzz, one_line
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ConfigError, SnnError
from engine.train.config import RunConfig, load_config, save_config


def check_run_config(path: Path) -> str:
    """load_config's contract: a sound RunConfig that round-trips, or a one-line ConfigError
    naming the file; a non-finite number is never accepted."""
    try:
        cfg = load_config(path)
    except SnnError as exc:
        assert isinstance(exc, ConfigError), type(exc)
        one_line(exc)
        assert path.name in str(exc), f"{exc} (does not name {path.name})"
        return "error"
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise AssertionError(f"{f.name} = {value} accepted")
    again = path.with_name(path.name + ".saved.toml")
    save_config(cfg, again)
    assert load_config(again) == cfg
    return "ok"


# ----------------------------------------------------------------------------- run configs
RUN_CASES = {
    "empty file": ("", "ok"),
    "unknown key": ("foo = 1\n", "error"),
    "misspelt key": ("epoch = 3\n", "error"),
    "string for an int": ('steps = "ten"\n', "error"),
    "bool for an int": ("steps = true\n", "error"),
    "float for an int": ("steps = 2.5\n", "error"),
    "array for an int": ("steps = [1, 2]\n", "error"),
    "date for an int": ("seed = 1979-05-27\n", "error"),
    "table for a string": ("[data]\nx = 1\n", "error"),
    "negative steps": ("steps = -1\n", "error"),
    "batch 0": ("batch = 0\n", "error"),
    "lr nan": ("lr = nan\n", "error"),
    "lr inf": ("lr = inf\n", "error"),
    "lr negative": ("lr = -1.0\n", "error"),
    "beta nan": ("beta = nan\n", "error"),
    "beta 2": ("beta = 2.0\n", "error"),
    "threshold nan": ("threshold = nan\n", "error"),
    "threshold 0": ("threshold = 0.0\n", "error"),
    "clip_grad nan": ("clip_grad = nan\n", "error"),
    "weight_decay nan": ("weight_decay = nan\n", "error"),
    "warmup_epochs nan": ("warmup_epochs = nan\n", "error"),
    "slope nan": ("slope = nan\n", "error"),
    "slope negative": ("slope = -1.0\n", "error"),
    "gamma nan": ("gamma = nan\n", "error"),
    "val_fraction 0.7": ("val_fraction = 0.7\n", "error"),
    "unknown encoder": ('encoder = "magic"\n', "error"),
    "unknown surrogate": ('surrogate = "magic"\n', "error"),
    "unknown loss": ('loss = "hinge"\n', "error"),
    "unknown amp": ('amp = "fp8"\n', "error"),
    "first_spike with ce_mem": ('predict = "first_spike"\nloss = "ce_mem"\n', "error"),
    "unknown model": ('model = "nope"\n', "error"),
    "features not a table": ('features = "x"\n', "error"),
    "not TOML": ("steps = = 3\n", "error"),
    "Latin-1 bytes": (b'data = "caf\xe9"\n', "error"),
    "random bytes": (bytes(range(256)), "error"),
    "nested 5000 deep": ("a = " + "[" * 5000 + "]" * 5000 + "\n", "error"),
    "all fields valid": (
        'data = "folder:x"\nmodel = "csnn"\nsteps = 5\nencoder = "rate"\n'
        "epochs = 2\nlr = 0.001\nseed = 3\n[features]\nn_mfcc = 13\n[augment]\ncopies = 1\n",
        "ok",
    ),
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_run_config_files_by_hand(case, files, tally):
    text, expected = RUN_CASES[case]
    path = files.write("run.toml", text if isinstance(text, bytes) else text.encode())
    outcome = check_run_config(path)
    tally["run config TOML (hand-made)", outcome] += 1
    assert outcome.split(" (")[0] == expected, (case, outcome)


def test_every_run_config_error_names_the_file(files):
    for case, (text, expected) in RUN_CASES.items():
        if expected != "error":
            continue
        path = files.write(
            f"run-{len(case)}.toml", text if isinstance(text, bytes) else text.encode()
        )
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert path.name in str(info.value), (case, str(info.value))


FIELDS = [f.name for f in dataclasses.fields(RunConfig)]
SCALAR = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-3, 100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 1),
    st.booleans(),
    st.text(max_size=8),
    st.sampled_from(
        ["direct", "rate", "csnn", "fc_snn", "cnn", "arctan", "adam", "cosine", "cpu", "auto"]
    ),
)
VALUE = st.one_of(
    SCALAR, st.lists(SCALAR, max_size=3), st.dictionaries(st.text(max_size=5), SCALAR)
)


@fuzz(150)
@given(
    d=st.dictionaries(
        st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=6)), VALUE, max_size=6
    )
)
def test_run_config_files_fuzzed(d, files, tally):
    try:
        text = tomli_w.dumps(d)
    except (TypeError, ValueError):
        return  # not expressible in TOML (tomli_w refuses it); nothing to read
    path = files.write("run.toml", text.encode())
    tally["run config TOML (fuzzed)", check_run_config(path)] += 1


VALID = (
    'data = "folder:x"\nmodel = "csnn"\nsteps = 5\nencoder = "rate"\nlr = 0.001\n'
    "epochs = 2\n[features]\nn_mfcc = 13\n[model_options]\nchannels = [8, 16]\n"
)


@fuzz(100)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.sampled_from(list('=[]"#\n .0-x\x00\\'))),
        min_size=1,
        max_size=6,
    )
)
def test_run_config_text_mutated(edits, files, tally):
    text = list(VALID)
    for pos, ch in edits:
        text[pos] = ch
    path = files.write("run.toml", "".join(text).encode())
    tally["run config TOML (mutated text)", check_run_config(path)] += 1


def test_config_strings_are_never_run(files, tally, tmp_path):
    marker = tmp_path / "pwned"
    payloads = [
        f"__import__('os').system('touch {marker}')",
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"; touch {marker}",
        f"!!python/object/apply:os.system ['touch {marker}']",
    ]
    for payload in payloads:
        for key in ("data", "model", "device", "surrogate", "encoder"):
            path = files.write("run.toml", tomli_w.dumps({key: payload}).encode())
            tally["run config TOML (code in strings)", check_run_config(path)] += 1
        path = files.write("run.toml", tomli_w.dumps({"features": {"kind": payload}}).encode())
        check_run_config(path)
    assert not marker.exists()


# ----------------------------------------------------------------------------- option tables
def check_feature_dict(d: dict) -> str:
    from engine.audio.features import FeatureConfig, compute_features

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg = FeatureConfig.from_dict(d)
    except SnnError as exc:
        assert isinstance(exc, ConfigError)
        one_line(exc)
        return "error"
    if cfg.kind == "image":
        return "ok"
    n = cfg.n_samples()
    assert 0 < n <= 10**8
    y = np.sin(np.arange(n, dtype=np.float32) * 0.05).astype(np.float32)
    x = compute_features(y, cfg)
    assert x.shape == (cfg.n_features, cfg.frames()) and np.isfinite(x).all()
    assert FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    return "ok"


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([math.nan, math.inf, -math.inf, -1, 0, "", "x", [1], {"a": 1}]),
)
FEATURE_VALUES = {
    "kind": st.sampled_from(["mfcc", "logmel", "image", "MFCC", "nope"]),
    "sample_rate": st.sampled_from([1000, 8000, 16000, 44100, 8000.0, 7999.5]),
    "duration": st.floats(0.05, 3) | st.sampled_from([0.0, 1e-4, 1]),
    "align": st.sampled_from(["pad", "trim", "centre", "center", "start", "middle"]),
    "trim_silence": st.booleans(),
    "n_mfcc": st.integers(-1, 60),
    "n_fft": st.sampled_from([16, 64, 256, 512, 1024, 2048, 255, 1]),
    "hop_length": st.integers(1, 600),
    "n_mels": st.integers(-1, 160),
    "fmin": st.floats(-10, 9000),
    "fmax": st.one_of(st.none(), st.floats(-10, 30000)),
    "htk": st.booleans(),
    "top_db": st.one_of(st.none(), st.floats(-10, 200)),
    "normalise": st.sampled_from(["none", "per_clip", "per_coeff", "minmax", "zscore"]),
}
SMALL = st.one_of(
    st.integers(-5, 600),
    st.floats(-10, 5000, allow_nan=False),
    st.text(max_size=5),
    JUNK,
)


@fuzz(150)
@given(
    d=st.fixed_dictionaries(
        {},
        optional={k: st.one_of(v, v, v, JUNK) for k, v in FEATURE_VALUES.items()}
        | {"bogus": SMALL},
    )
)
def test_feature_config_tables_fuzzed(d, tally):
    tally["[features] table", check_feature_dict(d)] += 1


@pytest.mark.parametrize("key", ["sample_rate", "n_fft", "n_mels"])
def test_feature_sizes_are_bounded(key):
    from engine.audio.features import FeatureConfig

    with pytest.raises(ConfigError):
        cfg = FeatureConfig.from_dict({key: 10**12})
        check_feature_dict(cfg.to_dict())


AUG_VALUES = {
    "time_shift_s": st.floats(-1, 2),
    "gain_db": st.floats(-30, 30),
    "noise_snr_db": st.one_of(st.none(), st.floats(-10, 60)),
    "background_dir": st.one_of(st.none(), st.sampled_from(["", "/nonexistent", "."])),
    "background_snr_db": st.floats(-10, 60),
    "copies": st.integers(-1, 5),
    "spec_time_mask": st.integers(-1, 100),
    "spec_freq_mask": st.integers(-1, 40),
}


@fuzz(100)
@given(
    d=st.fixed_dictionaries(
        {},
        optional={k: st.one_of(v, v, JUNK) for k, v in AUG_VALUES.items() if k != "background_dir"}
        | {"background_dir": AUG_VALUES["background_dir"]},
    )
)
def test_augment_tables_fuzzed(d, tally):
    import torch

    from engine.audio.augment import AugmentConfig, spec_augment

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg = AugmentConfig.from_dict(d)
    except SnnError as exc:
        assert isinstance(exc, ConfigError)
        one_line(exc)
        tally["[augment] table", "error"] += 1
        return
    batch = torch.ones(2, 1, 20, 63)
    out = spec_augment(batch, cfg, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and torch.isfinite(out).all()
    tally["[augment] table", "ok"] += 1


@pytest.mark.parametrize("value", [1.5, [1], 10**12])
def test_augment_background_dir_of_the_wrong_type(value):
    from engine.audio.augment import AugmentConfig

    with pytest.raises(ConfigError):
        AugmentConfig.from_dict({"background_dir": value})


OPTION_KEYS = ["hidden", "channels", "kernels", "pooling", "batchnorm", "beta", "threshold"]


@fuzz(60)
@given(
    model=st.sampled_from(["fc_snn", "csnn", "cnn"]),
    d=st.dictionaries(st.sampled_from(OPTION_KEYS + ["bogus"]), SMALL, max_size=3),
)
def test_model_option_tables_fuzzed(model, d, tally):
    """``[model_options]`` reaches build_model: a model or a ConfigError, nothing else."""
    from engine.models.registry import build_model, model_options

    try:
        cfg = RunConfig(model=model, steps=2, model_options=d)
        net = build_model(model, (1, 20, 63), 3, **model_options(cfg))
    except SnnError as exc:
        assert isinstance(exc, ConfigError)
        one_line(exc)
        tally["[model_options] table", "error"] += 1
        return
    assert sum(p.numel() for p in net.parameters()) > 0
    tally["[model_options] table", "ok"] += 1


# ----------------------------------------------------------------------------- AudioSet settings
@fuzz(80)
@given(
    d=st.dictionaries(
        st.sampled_from(
            ["classes", "exclude", "skip_restricted", "min_length", "per_class", "balance", "seed"]
            + ["format", "bogus"]
        ),
        st.one_of(SMALL, st.lists(st.text(max_size=4), max_size=3)),
        max_size=4,
    )
)
def test_selection_settings_fuzzed(d, tally):
    from engine.audioset.selection import SelectionConfig

    try:
        cfg = SelectionConfig.from_dict(d)
    except SnnError as exc:
        one_line(exc)
        tally["AudioSet selection settings", "error"] += 1
        return
    assert len(cfg.classes) >= 2 and cfg.format in ("wav", "flac")
    tally["AudioSet selection settings", "ok"] += 1


@fuzz(60)
@given(
    d=st.fixed_dictionaries(
        {},
        optional={
            "jobs": st.integers(-2, 100),
            "sample_rate": st.integers(-1, 400_000),
            "retries": st.integers(-2, 5),
            "backoff_s": st.floats(-1, 10),
            "clip_timeout_s": st.floats(-1, 100),
            "url_template": st.one_of(
                st.text(max_size=12),
                st.sampled_from(
                    ["http://h/{ytid}.flac", "file:///etc/{ytid}", "ftp://x/{ytid}", "-o {ytid}"]
                    + ["https://h/a.flac", "http:///{ytid}", "javascript:{ytid}"]
                ),
            ),
        },
    )
)
def test_download_settings_fuzzed(d, tally):
    """The values the command line and the builder tab pass (their types are checked there)."""
    from engine.audioset.download import DownloadConfig

    try:
        cfg = DownloadConfig(**d)
    except SnnError as exc:
        one_line(exc)
        tally["download settings", "error"] += 1
        return
    if cfg.url_template is not None:  # only http(s) addresses are ever fetched
        assert cfg.url_template.startswith(("http://", "https://")) and "{ytid}" in cfg.url_template
    tally["download settings", "ok"] += 1
