"""engine.audio.load: decoding, mono mix, resampling, fixed length, silence trim, bad files."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from engine.audio.load import audio_info, fit_length, load_audio, resample, trim_silence_edges
from engine.errors import DataError


def tone(freq, sr, seconds, amp=0.5):
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_freq(y, sr):
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spec)]


def test_pcm16_mono_roundtrip(tmp_path):
    y = tone(440, 8000, 0.5)
    path = tmp_path / "a.wav"
    sf.write(path, y, 8000, subtype="PCM_16")
    out, sr = load_audio(path)
    assert sr == 8000 and out.dtype == np.float32 and out.shape == (4000,)
    np.testing.assert_allclose(out, y, atol=1 / 32768 + 1e-7)


@pytest.mark.parametrize("subtype", ["PCM_24", "PCM_32", "FLOAT", "PCM_U8"])
def test_bit_depths(tmp_path, subtype):
    y = tone(300, 16000, 0.25)
    path = tmp_path / "a.wav"
    sf.write(path, y, 16000, subtype=subtype)
    out, sr = load_audio(path)
    assert sr == 16000 and out.shape == y.shape
    np.testing.assert_allclose(out, y, atol=1e-2 if subtype == "PCM_U8" else 1e-4)


def test_stereo_is_averaged(tmp_path):
    y = tone(200, 22050, 0.2)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([y, 0.5 * y], axis=1), 22050, subtype="FLOAT")
    out, _ = load_audio(path)
    np.testing.assert_allclose(out, 0.75 * y, atol=1e-6)
    info = audio_info(path)
    assert (info.channels, info.sample_rate, info.frames) == (2, 22050, len(y))


def test_resample_keeps_pitch_and_length(tmp_path):
    path = tmp_path / "hi.wav"
    sf.write(path, tone(440, 44100, 1.0), 44100, subtype="PCM_16")
    out, sr = load_audio(path, sample_rate=8000)
    assert sr == 8000 and len(out) == 8000
    assert abs(peak_freq(out, sr) - 440) < 2
    # the polyphase filter keeps the level of an in-band tone
    assert abs(np.sqrt(np.mean(out[400:-400] ** 2)) - 0.5 / np.sqrt(2)) < 0.01
    assert resample(out, 8000, 8000) is not None and len(resample(out, 8000, 16000)) == 16000


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3"])
def test_compressed_formats(tmp_path, fmt):
    y = tone(500, 16000, 1.0, amp=0.4)
    path = tmp_path / f"a.{fmt}"
    sf.write(path, y, 16000)
    out, sr = load_audio(path, sample_rate=16000)
    assert sr == 16000
    assert abs(len(out) - len(y)) < 0.1 * len(y)  # mp3 adds encoder delay/padding
    assert abs(peak_freq(out, sr) - 500) < 3
    if fmt == "flac":  # lossless
        np.testing.assert_allclose(out, y, atol=1 / 32768 + 1e-7)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_fallback_for_m4a(tmp_path):
    wav = tmp_path / "src.wav"
    sf.write(wav, tone(700, 16000, 1.0), 16000, subtype="PCM_16")
    m4a = tmp_path / "clip.m4a"
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), "-c:a", "aac", str(m4a)]
    subprocess.run(argv, check=True, timeout=60)
    with pytest.raises(sf.LibsndfileError):
        sf.info(m4a)  # libsndfile cannot: the fallback is what reads it
    out, sr = load_audio(m4a, sample_rate=8000)
    assert sr == 8000 and abs(len(out) - 8000) < 800
    assert abs(peak_freq(out, sr) - 700) < 5
    assert audio_info(m4a).sample_rate == 16000


@pytest.mark.parametrize(
    "align,expected",
    [("pad", [1, 2, 3, 0, 0]), ("trim", [0, 0, 1, 2, 3]), ("centre", [0, 1, 2, 3, 0])],
)
def test_fit_length_pads(align, expected):
    out = fit_length(np.array([1, 2, 3], dtype=np.float32), 5, align)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "align,expected", [("pad", [1, 2, 3]), ("trim", [4, 5, 6]), ("centre", [2, 3, 4])]
)
def test_fit_length_crops(align, expected):
    out = fit_length(np.arange(1, 7, dtype=np.float32), 3, align)
    np.testing.assert_array_equal(out, expected)


def test_duration_and_align_on_load(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.ones(4000, dtype=np.float32) * 0.5, 8000, subtype="FLOAT")
    out, _ = load_audio(path, duration=1.0, align="centre")
    assert len(out) == 8000
    assert np.all(out[:2000] == 0) and np.all(out[2000:6000] == 0.5) and np.all(out[6000:] == 0)
    with pytest.raises(DataError, match="align"):
        load_audio(path, duration=1.0, align="middle")


def test_trim_silence():
    y = np.concatenate([np.zeros(4000), tone(300, 8000, 0.5), np.zeros(4000)]).astype(np.float32)
    out = trim_silence_edges(y)
    assert 4000 <= len(out) <= 4000 + 2 * 512
    assert len(trim_silence_edges(np.zeros(100, dtype=np.float32))) == 100


def test_trim_silence_cuts_a_microphones_hiss_and_centres_the_word(tmp_path):
    """A word recorded at a clip's start over hiss 45 dB down ends up centred, as listen puts it."""
    rate = 8000
    hiss = 0.3 * 10 ** (-45 / 20) * np.random.default_rng(0).standard_normal(int(1.5 * rate))
    y = hiss.astype(np.float32)
    y[800:4800] += tone(300, rate, 0.5)  # 0.1-0.6 s of a 1.5-s recording
    sf.write(tmp_path / "word.wav", y, rate, subtype="FLOAT")
    # the librosa rule alone (60 dB under the peak) keeps the hiss, and so the word's place
    assert len(trim_silence_edges(y)) == len(y)
    out, _ = load_audio(tmp_path / "word.wav", duration=1.5, align="centre", trim_silence=True)
    loud = np.flatnonzero(np.abs(out) > 0.1)
    centre = (loud[0] + loud[-1]) / 2 / rate
    assert len(out) == 1.5 * rate and abs(centre - 0.75) < 0.05
    # a clip that is sound from end to end keeps its quiet start (within 30 dB of the peak)
    swell = (tone(300, rate, 1.0) * np.linspace(0.05, 1, rate)).astype(np.float32)
    assert len(trim_silence_edges(swell, margin_db=12)) == len(swell)


def test_trim_silence_on_load(tmp_path):
    path = tmp_path / "s.wav"
    y = np.concatenate([np.zeros(8000), tone(300, 8000, 0.25), np.zeros(8000)]).astype(np.float32)
    sf.write(path, y, 8000, subtype="FLOAT")
    out, _ = load_audio(path, trim_silence=True)
    assert len(out) < 4000


def test_bad_files_name_the_file_and_reason(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, tone(300, 8000, 0.5), 8000, subtype="PCM_16")
    raw = good.read_bytes()
    cases = {
        "empty.wav": (b"", "empty file"),
        "trunc.wav": (raw[: len(raw) // 2], "truncated"),
        "text.wav": (b"this is not audio at all, just some text" * 4, "not a readable audio"),
        "header.wav": (raw[:30], "truncated"),
    }
    for name, (data, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        for fn in (load_audio, audio_info):
            with pytest.raises(DataError) as err:
                fn(path)
            assert str(path) in str(err.value) and reason in str(err.value), str(err.value)
            assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="no such file"):
        load_audio(tmp_path / "missing.wav")


def test_real_fsdd_clip(fsdd_dir):
    y, sr = load_audio(fsdd_dir / "0_george_0.wav")
    assert sr == 8000 and y.ndim == 1 and 0.1 < len(y) / sr < 2.5
    assert 0 < np.abs(y).max() <= 1.0


def test_a_folder_named_like_a_clip(tmp_path):
    folder = tmp_path / "clip.wav"
    folder.mkdir()
    for fn in (load_audio, audio_info):
        with pytest.raises(DataError, match="is a folder") as err:
            fn(folder)
        assert str(folder) in str(err.value)


def test_float_files_off_scale_are_rescaled_and_nan_rejected(tmp_path):
    y = tone(300, 8000, 0.5)
    for scale in (32767.0, 1e30):  # integer-range floats; absurd floats
        path = tmp_path / "big.wav"
        sf.write(path, y * np.float32(scale), 8000, subtype="FLOAT")
        out, _ = load_audio(path, trim_silence=True)
        assert np.isfinite(out).all() and abs(np.abs(out).max() - 1.0) < 1e-6
        np.testing.assert_allclose(out, y / np.abs(y).max(), atol=1e-6)
    path = tmp_path / "mild.wav"  # mild overshoot is the file's own content: kept
    sf.write(path, y * np.float32(3.0), 8000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path)[0], y * 3.0, atol=1e-6)
    bad = y.copy()
    bad[10] = np.nan
    sf.write(path, bad, 8000, subtype="FLOAT")
    with pytest.raises(DataError, match="NaN/inf"):
        load_audio(path)


def test_trim_silence_edges_survives_huge_samples():
    y = np.zeros(4000, np.float32)
    y[1000:2000] = 1e30
    out = trim_silence_edges(y)
    # frames are 512 samples wide, so up to a frame of silence stays on either side
    assert 1000 <= len(out) <= 2100 and np.sum(out == 1e30) == 1000


def test_flac_header_claiming_days_of_audio(tmp_path):
    path = tmp_path / "claim.flac"
    sf.write(path, tone(300, 8000, 0.5), 8000, format="FLAC")
    b = bytearray(path.read_bytes())
    off = 8 + 10  # STREAMINFO: the 36-bit total sample count ends this 64-bit field
    val = int.from_bytes(b[off : off + 8], "big")
    b[off : off + 8] = ((val & ~((1 << 36) - 1)) | ((1 << 36) - 1)).to_bytes(8, "big")
    path.write_bytes(bytes(b))
    info = audio_info(path)
    assert info.frames == len(load_audio(path)[0]) == 4000
