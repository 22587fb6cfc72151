"""Fuzzing the audio readers and folder data sets with bad input: each case ends in a
one-line SnnError naming the file, or in a usable result (never another exception type, never
a half-written file). Property-based cases (hypothesis, derandomized) and hand-made ones;
``tally`` counts the inputs tried (``pytest -s`` prints them; ``$SNN_FUZZ_TALLY`` saves them).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
from fuzzkit import SR, fuzz, one_line, tone, wav_bytes
from hypothesis import given
from hypothesis import strategies as st

from engine.audio.load import audio_info, load_audio
from engine.data.specs import open_source
from engine.errors import DataError, SnnError

GOOD_WAV = wav_bytes(tone())


def check_audio(path: Path) -> str:
    """load_audio's contract on any file: a finite mono waveform, or a one-line DataError."""
    try:
        y, sr = load_audio(path)
    except SnnError as exc:
        one_line(exc, path)
        with pytest.raises(SnnError) as again:  # the header reader agrees or fails the same way
            load_audio(path, SR, 0.25, "centre", trim_silence=True)
        one_line(again.value, path)
        return "error"
    assert y.dtype == np.float32 and y.ndim == 1 and len(y) > 0 and sr > 0
    assert np.all(np.isfinite(y)), f"{path}: non-finite samples returned"
    y2, sr2 = load_audio(path, SR, 0.25, "centre", trim_silence=True)
    assert sr2 == SR and y2.shape == (SR // 4,) and np.all(np.isfinite(y2))
    try:
        info = audio_info(path)
        assert info.sample_rate == sr and info.channels >= 1
    except SnnError as exc:  # the header may be unreadable while ffmpeg still decodes
        one_line(exc, path)
    return "ok"


# ----------------------------------------------------------------------------- audio: by hand
def _wav_with(offset: int, fmt: str, value: int) -> bytes:
    b = bytearray(GOOD_WAV)
    b[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(b)


def _flac_total_samples(total: int) -> bytes:
    b = bytearray(wav_bytes(tone(), fmt="FLAC"))
    off = 8 + 10  # STREAMINFO: 20 bits rate, 3 channels, 5 bits per sample, 36 total samples
    val = int.from_bytes(b[off : off + 8], "big")
    val = (val & ~((1 << 36) - 1)) | total
    b[off : off + 8] = val.to_bytes(8, "big")
    return bytes(b)


AUDIO_CASES = {
    # name: (file name, bytes or a callable returning them, expected: "ok" | "error")
    "empty file": ("empty.wav", b"", "error"),
    "truncated to half": ("half.wav", GOOD_WAV[: len(GOOD_WAV) // 2], "error"),
    "header only (44 bytes)": ("head.wav", GOOD_WAV[:44], "error"),
    "RIFF header cut at 20 bytes": ("cut.wav", GOOD_WAV[:20], "error"),
    "wrong magic (RIFX)": ("rifx.wav", b"RIFX" + GOOD_WAV[4:], "error"),
    "data chunk claims 2 GB": ("claim.wav", _wav_with(40, "<I", 0x7FFFFFF0), "error"),
    "RIFF size claims 4 GB": ("riff.wav", _wav_with(4, "<I", 0xFFFFFFF0), "ok"),
    "sample rate 0": ("rate0.wav", _wav_with(24, "<I", 0), "error"),
    "0 channels": ("ch0.wav", _wav_with(22, "<H", 0), "error"),
    "65535 channels": ("ch65535.wav", _wav_with(22, "<H", 65535), "error"),
    "FLAC claiming 2**36 samples": ("claim.flac", _flac_total_samples((1 << 36) - 1), "ok"),
    "text named .wav": ("text.wav", b"hello world\n" * 50, "error"),
    "ID3 tag only, .mp3": ("tag.mp3", b"ID3\x03\x00\x00\x00\x00\x00\x00", "error"),
    "fLaC magic only": ("magic.flac", b"fLaC\x00\x00\x00\x22" + bytes(34), "error"),
    "silent": ("silent.wav", wav_bytes(np.zeros(SR, np.float32)), "ok"),
    "1 sample long": ("one.wav", wav_bytes(np.array([0.5], np.float32)), "ok"),
    "0 samples": ("zero.wav", wav_bytes(np.zeros(0, np.float32)), "error"),
    "24-bit PCM": ("b24.wav", wav_bytes(tone(), subtype="PCM_24"), "ok"),
    "8-bit unsigned": ("u8.wav", wav_bytes(tone(), subtype="PCM_U8"), "ok"),
    "8 channels": ("ch8.wav", wav_bytes(tone(channels=8)), "ok"),
    "float NaN samples": (
        "nan.wav",
        wav_bytes(np.array([0.1, np.nan, 0.2] * 100, np.float32), subtype="FLOAT"),
        "error",
    ),
    "float inf samples": (
        "inf.wav",
        wav_bytes(np.array([0.1, np.inf, -np.inf] * 100, np.float32), subtype="FLOAT"),
        "error",
    ),
    "float samples of 1e30": (
        "huge.wav",
        wav_bytes(np.array([1e30, -1e30] * 200, np.float32), subtype="FLOAT"),
        "any",
    ),
    "48 kHz stereo FLAC": ("st.flac", None, "ok"),
}


@pytest.mark.parametrize("case", list(AUDIO_CASES))
def test_bad_audio_files_by_hand(case, files, tally):
    name, data, expected = AUDIO_CASES[case]
    if data is None:
        data = wav_bytes(np.repeat(tone(4800)[:, None], 2, axis=1), sr=48000, fmt="FLAC")
    outcome = check_audio(files.write(name, data))
    tally["audio (hand-made)", outcome] += 1
    if expected != "any":
        assert outcome == expected, case


def test_a_missing_file_named_like_audio(files, tally):
    p = files.path("missing.wav")
    with pytest.raises(SnnError) as info:
        load_audio(p)
    one_line(info.value, p)
    tally["audio (hand-made)", "error"] += 1


def test_a_folder_named_like_audio(files, tally):
    folder = files.path("folder.wav")
    folder.mkdir()
    with pytest.raises(SnnError) as info:
        load_audio(folder)
    one_line(info.value, folder)


# ----------------------------------------------------------------------------- audio: fuzzed
MAGICS = [b"", b"RIFF", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC", b"OggS", b"ID3", b"\xff\xfb"]


@fuzz(48)
@given(
    suffix=st.sampled_from([".wav", ".mp3", ".flac", ".ogg"]),
    magic=st.sampled_from(MAGICS),
    body=st.binary(max_size=3000),
)
def test_random_bytes_with_audio_names(suffix, magic, body, files, tally):
    tally["audio (random bytes)", check_audio(files.write("x" + suffix, magic + body))] += 1


@fuzz(60)
@given(
    flips=st.lists(
        st.tuples(st.integers(0, len(GOOD_WAV) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=12,
    ),
    cut=st.one_of(st.none(), st.integers(0, len(GOOD_WAV))),
)
def test_mutated_wav_files(flips, cut, files, tally):
    """A valid WAV with some bytes changed (headers included) and maybe cut short."""
    b = bytearray(GOOD_WAV)
    for pos, value in flips:
        b[pos] = value
    data = bytes(b[:cut] if cut is not None else b)
    tally["audio (mutated WAV)", check_audio(files.write("m.wav", data))] += 1


@fuzz(40)
@given(
    subtype=st.sampled_from(["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]),
    channels=st.integers(1, 8),
    frames=st.integers(1, 3000),
    rate=st.sampled_from([1000, 8000, 11025, 22050, 44100, 96000]),
    special=st.sampled_from([None, "nan", "inf", "silent", "clipped"]),
)
def test_generated_audio_of_every_shape(subtype, channels, frames, rate, special, files, tally):
    rng = np.random.default_rng(frames)
    y = (0.5 * rng.standard_normal((frames, channels))).clip(-1, 1).astype(np.float32)
    float_file = subtype in ("FLOAT", "DOUBLE")
    if special == "silent":
        y[:] = 0
    elif special == "clipped":
        y = np.sign(y) * (2.0 if float_file else 1.0)
    elif special in ("nan", "inf") and float_file:
        y[frames // 2, 0] = np.nan if special == "nan" else np.inf
    path = files.write("g.wav", wav_bytes(y, rate, subtype))
    outcome = check_audio(path)
    tally["audio (generated)", outcome] += 1
    bad = special in ("nan", "inf") and float_file
    assert outcome == ("error" if bad else "ok")


# ----------------------------------------------------------------------------- folder data sets
def test_folder_data_set_with_every_bad_file(files, tally):
    """Bad files are listed in ``skipped`` with a reason; the good ones load and featurise."""
    from engine.audio.features import FeatureConfig
    from engine.data.feature_set import load_feature_set

    root = files.path("set")
    good = {}
    for c in ("a", "b"):
        for i in range(3):
            p = root / c / f"good{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(wav_bytes(tone(seed=i)))
            good[str(p)] = c
    bad = {}
    for k, (name, data, expected) in enumerate(AUDIO_CASES.values()):
        if expected == "error" and data is not None:
            p = root / "ab"[k % 2] / f"bad{k}_{name}"
            p.write_bytes(data)
            bad[str(p)] = name
    (root / "a" / "notes.txt").write_text("not audio")
    (root / "stray.wav").write_bytes(GOOD_WAV)
    src = open_source(f"folder:{root}")
    assert sorted(it.path for it in src.items if it.path in good) == sorted(good)
    skipped = dict(src.skipped)
    for reason in skipped.values():
        assert reason and "\n" not in reason
    # a file whose header reads fine but whose samples do not (NaN) is dropped when featurised
    header_ok = {it.path for it in src.items} - set(good)
    assert set(bad) - set(skipped) == header_ok
    assert str(root / "a" / "notes.txt") in skipped and str(root / "stray.wav") in skipped
    cache = files.path("cache")
    fs = load_feature_set(src, FeatureConfig(), cache_dir=cache)
    assert sorted(p for p in fs.paths) == sorted(good)
    assert {p for p, _ in fs.skipped} >= header_ok
    leftovers = [p for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".npy")]
    assert not leftovers, leftovers
    for p in cache.rglob("*.npy"):
        assert np.isfinite(np.load(p)).all()
    tally["folder data set", "skipped"] += len(skipped)
    tally["folder data set", "ok"] += len(good)


def test_folder_whose_class_holds_only_bad_files(files, tally):
    root = files.path("set")
    (root / "good").mkdir(parents=True)
    (root / "good" / "x.wav").write_bytes(GOOD_WAV)
    (root / "broken").mkdir()
    (root / "broken" / "y.wav").write_bytes(b"")
    (root / "broken" / "z.mp3").write_bytes(os.urandom(100))
    with pytest.raises(DataError, match="'broken' holds no readable audio") as info:
        open_source(f"folder:{root}")
    one_line(info.value, root)
    tally["folder data set", "error"] += 1
