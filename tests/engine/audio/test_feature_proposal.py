"""Feature settings proposed from the data's own durations and sample rates."""

import numpy as np
import pytest
import soundfile as sf

from engine.audio.feature_proposal import (
    nice_length,
    propose_features,
    propose_for_source,
    window_samples,
)
from engine.audio.features import FeatureConfig
from engine.data.specs import open_source
from engine.errors import DataError


def test_fsdd_gets_todays_fsdd_settings(fsdd_dir):
    p = propose_for_source(open_source(f"fsdd:{fsdd_dir}"))
    assert p.config == FeatureConfig()  # 8 kHz, 1 s, n_fft 256, hop 128, 40 mels, 20 MFCC
    assert 0.6 < p.duration_p95 < 0.7
    assert p.warning == ""
    assert "20 MFCC, 8000 Hz, 1 s clips" in p.describe()


def _write_clips(folder, seconds, rate, n_per_class=3):
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(n_per_class):
            t = np.arange(int(seconds * rate)) / rate
            y = 0.3 * np.sin(2 * np.pi * (300 + 200 * i) * t)
            sf.write(folder / c / f"{i}.wav", y.astype(np.float32), rate, subtype="PCM_16")


def test_five_second_wideband_clips_get_wideband_five_second_settings(tmp_path):
    _write_clips(tmp_path, 5.0, 22_050)
    p = propose_for_source(open_source(f"folder:{tmp_path}"))
    c = p.config
    assert (c.kind, c.sample_rate, c.duration) == ("logmel", 22_050, 5.0)
    assert (c.n_fft, c.hop_length, c.n_mels) == (512, 256, 64)  # 23 ms windows, 11.6 ms hops
    assert c.frames() == 431
    assert p.warning == ""


def test_rate_never_above_the_datas_own_and_capped():
    assert propose_features([1.0] * 4, [16_000] * 4).config.sample_rate == 16_000
    assert propose_features([1.0] * 4, [44_100] * 4).config.sample_rate == 22_050
    assert propose_features([1.0] * 3, [8000, 8000, 44_100]).config.sample_rate == 8000
    assert window_samples(16_000) == 512 and window_samples(44_100) == 1024


def test_clip_length_covers_95_percent_and_is_capped():
    durations = [0.4] * 94 + [1.8] * 6  # the 95th percentile lies among the long ones
    assert propose_features(durations, [8000] * 100).config.duration == 2.0
    assert propose_features([0.4] * 100, [8000] * 100).config.duration == 0.5
    assert nice_length(5.0002) == 5.0 and nice_length(7.0) == 8.0 and nice_length(600) == 10.0


def test_warns_when_a_fixed_length_throws_away_most_of_many_clips():
    durations = [3.0] * 70 + [30.0] * 30  # 30 % are three times the 10 s cap
    p = propose_features(durations, [22_050] * 100)
    assert p.config.duration == 10.0
    assert p.cut_share == pytest.approx(0.30)
    assert "30 % of the clips are longer than 20 s" in p.warning
    assert p.warning in p.describe()
    few = propose_features([3.0] * 95 + [30.0] * 5, [22_050] * 100)  # 5 %: no warning
    assert few.warning == ""


def test_bad_input_is_one_line_data_error():
    with pytest.raises(DataError, match="needs the duration and sample rate"):
        propose_features([], [])
    with pytest.raises(DataError, match="must be positive"):
        propose_features([1.0, 0.0], [8000, 8000])


def test_images_get_no_proposal(mnist_dir):
    assert propose_for_source(open_source(f"mnist:{mnist_dir}")) is None
