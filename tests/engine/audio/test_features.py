"""engine.audio.features: equality with librosa, config handling, no numba in the fast path, and the
cached, cancellable data-set feature builder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
import soundfile as sf

from engine.audio.augment import AugmentConfig
from engine.audio.features import (
    FeatureConfig,
    compute_features,
    compute_features_batch,
    dct_matrix,
    features_from_file,
    mel_filterbank,
)
from engine.data.feature_set import FeatureProgress, FeatureSet, build_feature_set, load_feature_set
from engine.errors import ConfigError, DataError

# Stated tolerance against librosa: values are dB-scale numbers up to ~600 in magnitude; float32
# rounding in the FFT and the log gives differences below 1e-3 absolute (measured max 3.4e-4 on
# FSDD clips).
ATOL = 1e-3


def run_to_end(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as done:
            return events, done.value


def speechlike(seed, n=8000, sr=8000):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f0 = rng.uniform(90, 200)
    y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    env = np.exp(-(((t - t.mean()) / (0.2 * t[-1] + 1e-3)) ** 2))
    return (0.3 * env * y + 0.01 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize(
    "sr,n_fft,n_mels,htk,fmin,fmax",
    [
        (8000, 256, 40, False, 0, None),
        (22050, 2048, 128, True, 50, 8000),
        (16000, 400, 64, False, 20, 7600),
    ],
)
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, htk, fmin, fmax):
    import librosa

    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)


def test_dct_matrix_is_scipy_ortho_dct():
    from scipy.fft import dct

    x = np.random.default_rng(0).standard_normal((40, 7))
    np.testing.assert_allclose(dct_matrix(13, 40) @ x, dct(x, axis=0, norm="ortho")[:13], atol=1e-5)


CONFIGS = [
    FeatureConfig(normalise="none"),
    FeatureConfig(normalise="none", n_fft=512, hop_length=160, n_mels=64, n_mfcc=13),
    FeatureConfig(normalise="none", sample_rate=16000, fmin=60.0, fmax=7000.0, htk=True),
    FeatureConfig(normalise="none", top_db=None, n_mels=32, n_mfcc=32),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.n_fft}-{c.hop_length}-{c.n_mels}")
@pytest.mark.parametrize("seed", [0, 1])
def test_mfcc_matches_librosa(cfg, seed):
    import librosa

    y = speechlike(seed, n=cfg.n_samples(), sr=cfg.sample_rate)
    ours = compute_features(y, cfg)
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        htk=cfg.htk,
    )
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=cfg.top_db), n_mfcc=cfg.n_mfcc)
    if cfg.top_db == 80.0:  # the one-call form people use gives the same
        ref1 = librosa.feature.mfcc(
            y=y,
            sr=cfg.sample_rate,
            n_mfcc=cfg.n_mfcc,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            n_mels=cfg.n_mels,
            fmin=cfg.fmin,
            fmax=cfg.fmax,
            htk=cfg.htk,
        )
        np.testing.assert_allclose(ref, ref1, atol=1e-4)
    assert ours.shape == ref.shape == cfg.shape()
    np.testing.assert_allclose(ours, ref, atol=ATOL, rtol=1e-5)


def test_logmel_matches_librosa():
    import librosa

    cfg = FeatureConfig(kind="logmel", normalise="none")
    y = speechlike(3)
    ours = compute_features(y, cfg)
    mel = librosa.feature.melspectrogram(y=y, sr=8000, n_fft=256, hop_length=128, n_mels=40)
    np.testing.assert_allclose(ours, librosa.power_to_db(mel), atol=ATOL, rtol=1e-5)
    assert ours.shape == (40, cfg.frames())


@pytest.mark.parametrize("n", [100, 255, 256, 257, 1001])
def test_short_and_odd_lengths_match_librosa(n):
    import librosa

    cfg = FeatureConfig(normalise="none")
    y = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns that n_fft exceeds a short input
        ref = librosa.feature.mfcc(y=y, sr=8000, n_mfcc=20, n_fft=256, hop_length=128, n_mels=40)
    np.testing.assert_allclose(compute_features(y, cfg), ref, atol=ATOL, rtol=1e-5)


def test_real_fsdd_clips_match_librosa(fsdd_dir):
    import librosa

    from engine.audio.load import load_audio

    cfg = FeatureConfig(normalise="none")
    for name in ("0_george_0.wav", "5_jackson_33.wav", "9_yweweler_49.wav"):
        y, sr = load_audio(fsdd_dir / name, cfg.sample_rate, cfg.duration, cfg.align)
        ref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, n_fft=256, hop_length=128, n_mels=40)
        np.testing.assert_allclose(features_from_file(fsdd_dir / name, cfg), ref, atol=ATOL)


def test_batch_equals_single():
    cfg = FeatureConfig()
    ys = np.stack([speechlike(s) for s in range(4)])
    batch = compute_features_batch(ys, cfg)
    for i in range(4):
        np.testing.assert_allclose(batch[i], compute_features(ys[i], cfg), atol=1e-5)


def test_normalise_modes():
    y = speechlike(5)
    x = compute_features(y, FeatureConfig(normalise="per_clip"))
    assert abs(x.mean()) < 1e-4 and abs(x.std() - 1) < 1e-3
    x = compute_features(y, FeatureConfig(normalise="per_coeff"))
    np.testing.assert_allclose(x.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=1), 1, atol=1e-3)
    x = compute_features(y, FeatureConfig(normalise="minmax"))
    assert x.min() == 0 and abs(x.max() - 1) < 1e-6
    for how in ("per_clip", "per_coeff", "minmax"):  # silence: constant rows, no division by 0
        x = compute_features(np.zeros(8000, np.float32), FeatureConfig(normalise=how))
        assert np.isfinite(x).all()


def test_default_config_shape_and_dict_roundtrip():
    cfg = FeatureConfig()
    assert cfg.shape() == (20, 63) and cfg.frames() == 63 and cfg.n_samples() == 8000
    d = json.loads(json.dumps(cfg.to_dict()))
    assert FeatureConfig.from_dict(d) == cfg
    other = FeatureConfig.from_dict({**d, "n_mfcc": 13.0, "fmax": 3000})
    assert other.n_mfcc == 13 and other.fmax == 3000.0 and other.cache_key() != cfg.cache_key()
    with pytest.warns(UserWarning, match="unknown keys"):
        FeatureConfig.from_dict({"n_mfcc": 13, "colour": "red"})


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "wavelet"},
        {"n_mfcc": 0},
        {"n_mfcc": 41},
        {"n_fft": -1},
        {"hop_length": 1.5},
        {"sample_rate": "8k"},
        {"duration": 0},
        {"fmax": 5000},
        {"fmin": 5000},
        {"normalise": "zscore"},
        {"align": "middle"},
        {"top_db": -3},
        {"htk": "yes"},
        {"sample_rate": 384_001},
        {"n_fft": 65_537},
        {"n_mels": 513},
        {"n_mfcc": 600, "n_mels": 600},
        {"duration": 601},
        {"hop_length": 1, "sample_rate": 384_000, "duration": 600},
    ],
)
def test_bad_config_values_raise_config_error(bad):
    with pytest.raises(ConfigError) as err:
        FeatureConfig.from_dict(bad)
    assert list(bad)[0] in str(err.value)


def test_fast_path_never_imports_librosa_or_numba(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, speechlike(0), 8000, subtype="PCM_16")
    code = (
        "import sys\n"
        "from engine.audio.features import FeatureConfig, features_from_file\n"
        f"x = features_from_file({str(path)!r}, FeatureConfig())\n"
        "print(x.shape, [m for m in ('librosa', 'numba', 'torch', 'scipy.signal') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(20, 63) []"


# ----------------------------------------------------------------------------- feature sets
def make_folder(root, per_class=4, classes=("001 - Dog bark", "002 - Siren"), sr=8000):
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            y = speechlike(c * 100 + i, n=int(sr * rng.uniform(0.3, 1.2)), sr=sr)
            sf.write(root / name / f"clip{i}.wav", y, sr, subtype="PCM_16")
    return root


def test_build_feature_set_progress_cache_and_recompute(tmp_path):
    data = make_folder(tmp_path / "data", per_class=5)
    (data / "002 - Siren" / "broken.wav").write_bytes(b"")
    cache = tmp_path / "cache"
    events, fs = run_to_end(
        build_feature_set(f"folder:{data}", FeatureConfig(), cache_dir=cache, jobs=1)
    )
    assert isinstance(fs, FeatureSet) and all(isinstance(e, FeatureProgress) for e in events)
    assert fs.x.shape == (10, 1, 20, 63) and fs.x.dtype == np.float32 and fs.y.dtype == np.int64
    assert events[-1].phase == "done" and events[-1].done == events[-1].total == 10
    assert events[-1].cached == 0
    assert fs.class_names == ["001 - Dog bark", "002 - Siren"]
    assert any("broken.wav" in p and "empty" in r for p, r in fs.skipped)
    idx = np.concatenate(list(fs.splits.values()))
    assert sorted(idx.tolist()) == list(range(10))
    # same values as featurising each file directly
    row = fs.paths.index(str(data / "001 - Dog bark" / "clip3.wav"))
    np.testing.assert_allclose(fs.x[row, 0], features_from_file(fs.paths[row], FeatureConfig()))

    events2, fs2 = run_to_end(
        build_feature_set(f"folder:{data}", FeatureConfig(), cache_dir=cache, jobs=1)
    )
    assert events2[-1].cached == 10
    np.testing.assert_array_equal(fs2.x, fs.x)

    # touch one file: only it is recomputed
    path = data / "002 - Siren" / "clip0.wav"
    sf.write(path, speechlike(999), 8000, subtype="PCM_16")
    os.utime(path, ns=(1, 1))
    events3, fs3 = run_to_end(
        build_feature_set(f"folder:{data}", FeatureConfig(), cache_dir=cache, jobs=1)
    )
    assert events3[-1].cached == 9
    # a new parameter: everything is recomputed, then cached under its own key
    cfg13 = FeatureConfig(n_mfcc=13)
    events4, fs4 = run_to_end(build_feature_set(f"folder:{data}", cfg13, cache_dir=cache, jobs=1))
    assert events4[-1].cached == 0 and fs4.x.shape == (10, 1, 13, 63)


def test_stale_part_files_are_cleaned(tmp_path):
    from engine.audio.feature_cache import clean_stale_parts

    sub = tmp_path / "ab"
    sub.mkdir()
    old, fresh, entry = sub / ".part-old", sub / ".part-new", sub / "ab12.npy"
    for p in (old, fresh, entry):
        p.write_bytes(b"x")
    hour_ago = os.stat(old).st_mtime - 7200
    os.utime(old, (hour_ago, hour_ago))
    os.utime(entry, (hour_ago, hour_ago))
    assert clean_stale_parts(str(tmp_path)) == 1
    assert not old.exists() and fresh.exists() and entry.exists()
    assert clean_stale_parts(str(tmp_path / "missing")) == 0


def test_threads_give_same_result_as_serial(tmp_path):
    data = make_folder(tmp_path / "data", per_class=6)
    cfg = FeatureConfig(kind="logmel")
    a = load_feature_set(f"folder:{data}", cfg, jobs=1, use_cache=False)
    b = load_feature_set(f"folder:{data}", cfg, jobs=3, use_cache=False)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.paths == b.paths


@pytest.mark.slow
def test_process_executor_gives_same_result(tmp_path, monkeypatch):
    import engine.data.feature_set as fsmod

    data = make_folder(tmp_path / "data", per_class=3)
    cfg = FeatureConfig()
    a = load_feature_set(f"folder:{data}", cfg, jobs=1, use_cache=False)
    monkeypatch.setattr(fsmod, "CHUNK_MAX", 2)  # several chunks, so the pool is used
    b = load_feature_set(f"folder:{data}", cfg, jobs=2, executor="process", use_cache=False)
    np.testing.assert_array_equal(a.x, b.x)
    with pytest.raises(ConfigError, match="executor"):
        load_feature_set(f"folder:{data}", cfg, executor="gpu")


def test_stop_event_returns_none_and_keeps_finished_clips(tmp_path):
    data = make_folder(tmp_path / "data", per_class=3)
    stop = threading.Event()
    stop.set()
    _events, result = run_to_end(
        build_feature_set(f"folder:{data}", stop=stop, cache_dir=tmp_path / "c")
    )
    assert result is None
    with pytest.raises(DataError, match="stopped"):
        load_feature_set(f"folder:{data}", stop=stop, cache_dir=tmp_path / "c")


def test_stop_during_compute(tmp_path, monkeypatch):
    import engine.data.feature_set as fsmod

    monkeypatch.setattr(fsmod, "CHUNK_MAX", 2)  # several chunks, so there is a "during"
    data = make_folder(tmp_path / "data", per_class=6)
    stop = threading.Event()
    gen = build_feature_set(f"folder:{data}", stop=stop, cache_dir=tmp_path / "c", jobs=1)
    seen = []
    result = "not finished"
    while True:
        try:
            ev = next(gen)
        except StopIteration as done:
            result = done.value
            break
        seen.append(ev)
        if ev.phase == "compute" and ev.done >= 2:
            stop.set()
    assert result is None and seen[-1].done < 12
    # what was computed before the stop is cached
    events, fs = run_to_end(build_feature_set(f"folder:{data}", cache_dir=tmp_path / "c", jobs=1))
    assert events[-1].cached == seen[-1].done and fs.x.shape[0] == 12


def test_augmented_copies_only_in_train(tmp_path):
    data = make_folder(tmp_path / "data", per_class=10)
    aug = AugmentConfig(time_shift_s=0.1, gain_db=6, noise_snr_db=20, copies=2)
    fs = load_feature_set(f"folder:{data}", seed=3, augment=aug, cache_dir=tmp_path / "c", jobs=1)
    n_train = int((~fs.augmented[fs.splits["train"]]).sum())
    assert fs.augmented.sum() == 2 * n_train
    for name in ("val", "test"):
        assert not fs.augmented[fs.splits[name]].any()
    assert fs.augmented[fs.splits["train"]].sum() == 2 * n_train
    # copies differ from their original but keep its label
    rows = np.flatnonzero(fs.augmented)
    for r in rows[:3]:
        orig = np.flatnonzero((fs.source_index == fs.source_index[r]) & ~fs.augmented)[0]
        assert fs.y[r] == fs.y[orig] and not np.allclose(fs.x[r], fs.x[orig])
    again = load_feature_set(
        f"folder:{data}", seed=3, augment=aug, cache_dir=tmp_path / "c2", jobs=1
    )
    np.testing.assert_array_equal(again.x, fs.x)  # seeded


def test_mnist_feature_set(mnist_dir):
    fs = load_feature_set(f"mnist:{mnist_dir}")
    assert fs.x.shape == (10000, 1, 28, 28) and fs.x.dtype == np.float32
    assert 0 <= fs.x.min() and fs.x.max() <= 1
    assert (
        len(fs.splits["test"]) == 2000 and len(fs.splits["train"]) + len(fs.splits["val"]) == 8000
    )
    assert fs.feature_config.kind == "image"


def test_image_config_on_audio_is_an_error(tmp_path):
    data = make_folder(tmp_path / "data", per_class=2)
    with pytest.raises(ConfigError, match="mfcc"):
        load_feature_set(f"folder:{data}", FeatureConfig(kind="image"))


@pytest.mark.slow
def test_full_fsdd_featurises_and_second_run_is_cached(fsdd_dir, tmp_path):
    spec = f"fsdd:{fsdd_dir}"
    events, fs = run_to_end(build_feature_set(spec, FeatureConfig(), cache_dir=tmp_path))
    assert fs.x.shape == (3000, 1, 20, 63)
    assert {k: len(v) for k, v in fs.splits.items()} == {"train": 2430, "val": 270, "test": 300}
    compute = [e for e in events if e.phase == "compute"]
    assert len(compute) > 10 and compute[-1].done == 3000
    events2, fs2 = run_to_end(build_feature_set(spec, FeatureConfig(), cache_dir=tmp_path))
    assert events2[-1].cached == 3000
    np.testing.assert_array_equal(fs.x, fs2.x)
