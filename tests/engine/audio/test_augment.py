"""engine.audio.augment: each waveform augmentation, seeding, and SpecAugment masks."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.audio.augment import (
    AugmentConfig,
    WaveformAugmenter,
    copy_rng,
    mix_at_snr,
    spec_augment,
    time_shift,
)
from engine.errors import ConfigError, DataError


def snr_db(clean, mixed):
    noise = mixed - clean
    return 10 * np.log10(
        np.mean(clean.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2)
    )


def tone(n=8000, sr=8000, f=300):
    return (0.3 * np.sin(2 * np.pi * f * np.arange(n) / sr)).astype(np.float32)


def test_config_defaults_are_off_and_validation():
    cfg = AugmentConfig()
    assert not cfg.waveform_enabled and not cfg.spec_enabled
    assert not AugmentConfig(gain_db=3).waveform_enabled  # no copies asked for
    assert AugmentConfig(gain_db=3, copies=1).waveform_enabled
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    for bad in ({"copies": -1}, {"gain_db": -2}, {"spec_time_mask": 1.5}, {"noise_snr_db": "x"}):
        with pytest.raises(ConfigError):
            AugmentConfig.from_dict(bad)
    with pytest.raises(ConfigError, match="background_dir"):
        AugmentConfig(background_dir="/no/such/folder")
    with pytest.warns(UserWarning):
        AugmentConfig.from_dict({"pitch": 2})


def test_time_shift_exact():
    y = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(time_shift(y, 2), [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(time_shift(y, -2), [3, 4, 5, 0, 0])
    np.testing.assert_array_equal(time_shift(y, 0), y)
    np.testing.assert_array_equal(time_shift(y, 9), np.zeros(5))


@pytest.mark.parametrize("target", [0.0, 10.0, 25.0])
def test_mix_at_snr_hits_target(target):
    clean = tone()
    noise = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    assert snr_db(clean, mix_at_snr(clean, noise, target)) == pytest.approx(target, abs=0.01)


def test_waveform_augmenter_each_switch():
    y = tone()
    rng = np.random.default_rng(1)
    shifted = WaveformAugmenter(AugmentConfig(time_shift_s=0.1, copies=1), 8000)(y, rng)
    lag = np.argmax(np.correlate(shifted, y, mode="full")) - (len(y) - 1)
    assert abs(lag) <= 800 and len(shifted) == len(y)
    gained = WaveformAugmenter(AugmentConfig(gain_db=6, copies=1), 8000)(y, rng)
    ratio = np.abs(gained).max() / np.abs(y).max()
    assert 10 ** (-6 / 20) - 1e-6 <= ratio <= 10 ** (6 / 20) + 1e-6
    noisy = WaveformAugmenter(AugmentConfig(noise_snr_db=15, copies=1), 8000)(y, rng)
    assert snr_db(y, noisy) == pytest.approx(15, abs=0.01)


def test_background_noise_from_folder(tmp_path):
    bg = tmp_path / "bg"
    bg.mkdir()
    sf.write(bg / "hum.wav", tone(4000, 16000, 50) * 2, 16000, subtype="FLOAT")  # resampled, tiled
    (bg / "broken.wav").write_bytes(b"")
    cfg = AugmentConfig(background_dir=str(bg), background_snr_db=5, copies=1)
    y = tone()
    with pytest.warns(UserWarning, match="broken.wav"):
        out = WaveformAugmenter(cfg, 8000)(y, np.random.default_rng(0))
    assert snr_db(y, out) == pytest.approx(5, abs=0.01)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no audio files"):
        WaveformAugmenter(AugmentConfig(background_dir=str(empty), copies=1), 8000)(
            y, np.random.default_rng(0)
        )


def test_seeded_copies_repeat_and_differ():
    cfg = AugmentConfig(time_shift_s=0.05, gain_db=3, noise_snr_db=20, copies=2)
    aug = WaveformAugmenter(cfg, 8000)
    y = tone()
    a = aug(y, copy_rng(0, "/data/x.wav", 1))
    b = aug(y, copy_rng(0, "/data/x.wav", 1))
    c = aug(y, copy_rng(0, "/data/x.wav", 2))
    d = aug(y, copy_rng(1, "/data/x.wav", 1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, d)


def test_spec_augment_masks():
    batch = torch.ones(16, 1, 20, 63)
    cfg = AugmentConfig(spec_time_mask=10, spec_freq_mask=4, spec_masks=1)
    out = spec_augment(batch, cfg, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and torch.all(batch == 1)  # input untouched
    for ex in out[:, 0]:
        zero_cols = int((ex == 0).all(dim=0).sum())
        zero_rows = int((ex == 0).all(dim=1).sum())
        assert zero_cols <= 10 and zero_rows <= 4
        # every zero lies in a masked row or a masked column
        masked = (ex == 0).all(dim=0)[None, :] | (ex == 0).all(dim=1)[:, None]
        assert torch.equal(ex == 0, masked)
    assert (out == 0).any()
    again = spec_augment(batch, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert spec_augment(batch, AugmentConfig(), None) is batch
    with pytest.raises(ValueError):
        spec_augment(torch.ones(3, 20, 63), cfg)
