"""Fuzzing every reader with bad input: each case ends in a one-line SnnError naming the file, or
in a usable result (never another exception type, never a half-written file).

Property-based cases (hypothesis, derandomized: the same inputs on every run) and hand-made ones
cover audio files, folder and CSV data sets, AudioSet segment CSVs and ontology JSON, MNIST IDX
files and checkpoints (configs: ``test_fuzz_configs.py``). ``tally`` counts the inputs tried;
the totals are printed at the end of the module (``pytest -s``) and written as JSON to
``$SNN_FUZZ_TALLY`` when that is set (the README's Reliability section quotes them).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import audioset
from engine.audio import audio_info, load_audio
from engine.checkpoint import Predictor, load_checkpoint, save_checkpoint
from engine.config import RunConfig
from engine.datasets import open_source
from engine.errors import CheckpointError, DataError, SnnError
from engine.idx import read_idx
from engine.models import build_model, model_options

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SR = 8000


def fuzz(n: int) -> settings:
    """The FUZZ profile with ``n`` examples."""
    return settings(FUZZ, max_examples=n)


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def tally():
    """Inputs tried per reader and outcome; printed (and saved) when the module ends."""
    counts: Counter[tuple[str, str]] = Counter()
    yield counts
    _report(counts, "readers")


def _report(counts: Counter, name: str) -> None:
    per_reader = Counter()
    for (reader, _outcome), n in counts.items():
        per_reader[reader] += n
    lines = [f"fuzz {name}: {sum(counts.values())} inputs"]
    lines += [f"  {r}: {n} ({_outcomes(counts, r)})" for r, n in sorted(per_reader.items())]
    print("\n" + "\n".join(lines))
    target = os.environ.get("SNN_FUZZ_TALLY")
    if target:
        old = json.loads(Path(target).read_text()) if Path(target).is_file() else {}
        old[name] = {f"{r}|{o}": n for (r, o), n in sorted(counts.items())}
        Path(target).write_text(json.dumps(old, indent=1))


def _outcomes(counts: Counter, reader: str) -> str:
    return ", ".join(f"{o} {n}" for (r, o), n in sorted(counts.items()) if r == reader)


def one_line(exc: BaseException, *names: str | os.PathLike) -> str:
    """Assert ``exc`` is a one-line SnnError naming one of ``names`` (a path or its basename)."""
    assert isinstance(exc, SnnError), f"{type(exc).__name__}: {exc}"
    text = str(exc)
    assert text and "\n" not in text and "\r" not in text, repr(text)
    assert any(os.path.basename(os.fspath(n)) in text for n in names), (text, names)
    return text


class Files:
    """Unique file names in one module-wide folder (hypothesis examples share it)."""

    def __init__(self, root: Path):
        self.root = root
        self.n = 0

    def path(self, name: str) -> Path:
        self.n += 1
        folder = self.root / f"case{self.n:05d}"
        folder.mkdir()
        return folder / name

    def write(self, name: str, data: bytes) -> Path:
        p = self.path(name)
        p.write_bytes(data)
        return p


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return Files(tmp_path_factory.mktemp("fuzz"))


def wav_bytes(y: np.ndarray, sr: int = SR, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, subtype=subtype, format=fmt)
    return buf.getvalue()


def tone(n: int = SR // 4, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    y = 0.3 * np.sin(2 * np.pi * 440 * t)[:, None] + 0.01 * rng.standard_normal((n, channels))
    return y.astype(np.float32)[:, 0] if channels == 1 else y.astype(np.float32)


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
    from engine.features import FeatureConfig
    from engine.featureset import load_feature_set

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


# ----------------------------------------------------------------------------- CSV manifests
@pytest.fixture(scope="module")
def csv_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("csvset") / "in"  # manifests live here; ../ leaves it
    for c in ("a", "b"):
        (root / "clips" / c).mkdir(parents=True)
        for i in range(2):
            (root / "clips" / c / f"{i}.wav").write_bytes(wav_bytes(tone(seed=i)))
    (root.parent / "outside.wav").write_bytes(GOOD_WAV)
    (root / "clips" / "empty.wav").write_bytes(b"")
    return root


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def check_manifest(path: Path) -> str:
    try:
        src = open_source(f"csv:{path}")
    except SnnError as exc:
        one_line(exc, path)
        return "error"
    assert src.items and len(set(src.class_names)) == len(src.class_names)
    for it in src.items:
        assert os.path.isfile(it.path) and 0 <= it.label < len(src.class_names)
        assert it.split in (None, "train", "val", "test")
    for _p, reason in src.skipped:
        assert reason and "\n" not in reason
    return "ok"


CSV_CASES = {
    "empty": ("", "error"),
    "header only": ("path,label\n", "error"),
    "no label column": ("path,kind\nclips/a/0.wav,x\n", "error"),
    "one column": ("clips/a/0.wav\n", "error"),
    "BOM + header": ("\ufeffpath,label\nclips/a/0.wav,a\nclips/b/0.wav,b\n", "ok"),
    "CRLF": ("path,label\r\nclips/a/0.wav,a\r\nclips/b/0.wav,b\r\n", "ok"),
    "quoted labels with commas and quotes": (
        'path,label\n"clips/a/0.wav","dog, big"\n"clips/b/0.wav","cat ""x"""\n',
        "ok",
    ),
    "unterminated quote": ('path,label\n"clips/a/0.wav,a\nclips/b/0.wav,b\n', "error"),
    "bad split": ("clips/a/0.wav,a,holdout\n", "error"),
    "numbers as labels": ("clips/a/0.wav,1\nclips/b/0.wav,-2\nclips/b/1.wav,1e9\n", "ok"),
    "label is not a number it looks like": ("clips/a/0.wav,1.5.2\nclips/b/0.wav,nan\n", "ok"),
    "tab separated": ("path\tlabel\nclips/a/0.wav\ta\nclips/b/0.wav\tb\n", "ok"),
    "Latin-1 bytes": (b"path,label\nclips/a/0.wav,caf\xe9\n", "error"),
    "random bytes": (bytes(range(256)) * 8, "error"),
    "field over csv's size limit": ("clips/a/0.wav," + "d" * 200_000 + "\n", "error"),
    "a folder as a path": ("clips/a,a\nclips/b/0.wav,b\n", "error"),
    "all paths missing": ("nope.wav,a\nnope2.wav,b\n", "error"),
    "only an empty file": ("clips/empty.wav,a\n", "error"),
    "extra columns": ("clips/a/0.wav,a,train,g1,x,y\nclips/b/0.wav,b,test,g2,,\n", "ok"),
    "NUL byte in a path": ("clips/a/0.wav\x00,a\nclips/b/0.wav,b\n", "error"),
    "blank lines and commas only": ("\n,\n,,\n\n", "error"),
    "path escaping the folder (..)": ("../outside.wav,a\nclips/b/0.wav,b\n", "ok"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_csv_manifests_by_hand(case, csv_root, tally):
    text, expected = CSV_CASES[case]
    path = csv_root / f"{_digest(case)}.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    outcome = check_manifest(path)
    tally["CSV manifest (hand-made)", outcome] += 1
    assert outcome == expected, case


CELL = st.one_of(
    st.sampled_from(
        ["clips/a/0.wav", "clips/b/1.wav", "../outside.wav", "clips/empty.wav", "nope.wav", ""]
    ),
    st.text(max_size=12),
)
LABEL = st.one_of(st.sampled_from(["a", "b", "1", "-1", "x y", 'q"q', "é"]), st.text(max_size=8))


@fuzz(80)
@given(
    rows=st.lists(
        st.tuples(
            CELL,
            LABEL,
            st.sampled_from(["", "train", "val", "test", "TEST", "eval", "bogus"]),
            st.text(max_size=4),
        ),
        max_size=8,
    ),
    header=st.booleans(),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    delimiter=st.sampled_from([",", "\t", ";"]),
    columns=st.integers(1, 4),
)
def test_csv_manifests_fuzzed(rows, header, bom, newline, delimiter, columns, csv_root, tally):
    import csv as csvmod

    buf = io.StringIO()
    writer = csvmod.writer(buf, delimiter=delimiter, lineterminator=newline)
    if header:
        writer.writerow(["path", "label", "split", "group"][:columns])
    for row in rows:
        writer.writerow(list(row)[:columns])
    text = ("\ufeff" if bom else "") + buf.getvalue()
    path = csv_root / f"fz{_digest(text)}.csv"
    path.write_text(text, encoding="utf-8", newline="")
    tally["CSV manifest (fuzzed)", check_manifest(path)] += 1


# ----------------------------------------------------------------------------- AudioSet metadata
HEADER = "# Segments csv created Sun Mar  5 10:54:31 2017\n# YTID, start, end, labels\n"
SEGMENT_CASES = {
    "empty": "",
    "header only": HEADER,
    "BOM": '\ufeff--PJHxphWEs, 30.000, 40.000, "/m/09x0r"\n',
    "CRLF": '--PJHxphWEs, 30.000, 40.000, "/m/09x0r"\r\n-0DLPzsiXXE, 1, 11, "/m/a,/m/b"\r\n',
    "missing columns": "--PJHxphWEs, 30.000\n",
    "bad numbers": '--PJHxphWEs, abc, 40, "/m/x"\n--PJHxphWEs, nan, inf, "/m/x"\n'
    '--PJHxphWEs, 1e400, 2, "/m/x"\n--PJHxphWEs, -5, 2, "/m/x"\n--PJHxphWEs, 9, 3, "/m/x"\n',
    "IDs that look like options": '-o /tmp/x00, 1, 2, "/m/x"\n--exec=rmrf, 1, 2, "/m/x"\n',
    "unterminated quote": '--PJHxphWEs, 30.000, 40.000, "/m/09x0r\n',
    "field over csv's size limit": '--PJHxphWEs, 30, 40, "' + "x" * 200_000 + '"\n',
    "NUL in an ID": '--PJHxphWEs\x00, 30.000, 40.000, "/m/09x0r"\n',
    "no labels": '--PJHxphWEs, 30.000, 40.000, ""\n',
}


@pytest.mark.parametrize("case", list(SEGMENT_CASES) + ["random bytes", "Latin-1"])
def test_segment_csvs_by_hand(case, files, tally):
    data = {"random bytes": bytes(range(256)) * 4, "Latin-1": b'--PJHxphWEs, 3, 4, "caf\xe9"\n'}
    raw = data.get(case) or SEGMENT_CASES[case].encode()
    path = files.write("x_segments.csv", raw)
    tally["AudioSet segment CSV", check_segments(path)] += 1
    if case == "BOM":
        assert len(audioset.read_segments(path)) == 1  # the mark must not spoil the first ID


def check_segments(path: Path) -> str:
    try:
        table = audioset.read_segments(path)
    except SnnError as exc:
        one_line(exc, path)
        return "error"
    for i in range(len(table)):
        assert audioset.is_valid_ytid(str(table.ytid[i]))
        assert 0 <= table.start[i] < table.end[i] and np.isfinite(table.end[i])
        assert table.labels(i)
    for _file, _line, reason in table.malformed:
        assert "\n" not in reason
    return "ok" if len(table) else "ok (no rows)"


@fuzz(60)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(["--PJHxphWEs", "-0DLPzsiXXE", "-o x"]), st.text(max_size=13)
            ),
            st.one_of(st.floats(allow_nan=True), st.text(max_size=5)),
            st.one_of(st.floats(allow_nan=True), st.text(max_size=5)),
            st.one_of(st.sampled_from(["/m/a,/m/b", "/m/a", ""]), st.text(max_size=10)),
        ),
        max_size=8,
    ),
    quote=st.booleans(),
)
def test_segment_csvs_fuzzed(rows, quote, files, tally):
    lines = []
    for ytid, start, end, labels in rows:
        lab = '"' + str(labels).replace('"', '""') + '"' if quote else str(labels)
        lines.append(f"{ytid}, {start}, {end}, {lab}")
    path = files.write("f_segments.csv", (HEADER + "\n".join(lines)).encode("utf-8", "replace"))
    tally["AudioSet segment CSV", check_segments(path)] += 1


def check_ontology(path: Path) -> str:
    try:
        onto = audioset.load_ontology(path)
    except SnnError as exc:
        one_line(exc, path)
        return "error"
    for nid in list(onto.nodes)[:200]:  # every walk ends, even on cycles (200: walks are O(n))
        assert (
            nid in onto.descendants(nid, skip=("abstract", "blacklist"))
            or onto.nodes[nid].restrictions
        )
        assert onto.path(nid)
    for problem in onto.problems:
        assert "\n" not in problem
    return "ok"


ONTOLOGY_CASES = {
    "empty": "",
    "not a list": '{"id": "/m/x"}',
    "empty list": "[]",
    "bad JSON": '[{"id": "a",]',
    "cycle a->b->a": [
        {"id": "a", "name": "A", "child_ids": ["b"]},
        {"id": "b", "child_ids": ["a"]},
    ],
    "self cycle": [{"id": "a", "name": "A", "child_ids": ["a"]}],
    "missing child id": [{"id": "a", "name": "A", "child_ids": ["zz"]}],
    "entry without id": [{"name": "A"}, {"id": "b", "name": "B"}],
    "id not a string": [{"id": 5, "name": "A"}, {"id": "b"}],
    "child_ids a string": [{"id": "a", "child_ids": "b"}, {"id": "b"}],
    "child_ids numbers and null": [{"id": "a", "child_ids": [1, 2, None]}],
    "restrictions a number": [{"id": "a", "restrictions": 5}],
    "restrictions a string": [{"id": "a", "restrictions": "abstract"}],
    "entries not objects": [1, "x", None, {"id": "a"}],
    "duplicate ids": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}],
    "name an object": [{"id": "a", "name": {"x": 1}}],
    "nested 100000 deep": "[" * 100_000 + "]" * 100_000,
    "chain of 5000": [
        {"id": f"n{i}", "name": f"N{i}", "child_ids": [f"n{i + 1}"]} for i in range(5000)
    ],
}


@pytest.mark.parametrize("case", list(ONTOLOGY_CASES) + ["random bytes"])
def test_ontology_json_by_hand(case, files, tally):
    value = ONTOLOGY_CASES.get(case)
    raw = (
        bytes(range(128, 256)) * 4
        if case == "random bytes"
        else (value if isinstance(value, str) else json.dumps(value)).encode()
    )
    path = files.write("ontology.json", raw)
    outcome = check_ontology(path)
    tally["AudioSet ontology JSON", outcome] += 1
    if case == "restrictions a string":
        assert audioset.load_ontology(path).nodes["a"].restrictions == ("abstract",)


NODE_ID = st.sampled_from(["a", "b", "c", "d", "", "/m/x"])
JSON_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@fuzz(80)
@given(
    records=st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {"id": NODE_ID},
                optional={
                    "name": st.one_of(st.text(max_size=5), JSON_JUNK),
                    "child_ids": st.one_of(st.lists(NODE_ID, max_size=4), JSON_JUNK),
                    "restrictions": st.one_of(
                        st.lists(st.sampled_from(["abstract", "blacklist", "x"])), JSON_JUNK
                    ),
                },
            ),
            JSON_JUNK,
        ),
        max_size=8,
    )
)
def test_ontology_json_fuzzed(records, files, tally):
    path = files.write("ontology.json", json.dumps(records).encode())
    tally["AudioSet ontology JSON", check_ontology(path)] += 1


# ----------------------------------------------------------------------------- MNIST IDX
def idx_bytes(code: int, dims: list[int], payload: bytes | None = None) -> bytes:
    head = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + (payload if payload is not None else bytes(int(np.prod(dims))))


def check_idx(path: Path) -> str:
    try:
        a = read_idx(path)
    except SnnError as exc:
        one_line(exc, path)
        return "error"
    assert isinstance(a, np.ndarray) and a.ndim >= 1
    return "ok"


IDX_CASES = {
    "empty": b"",
    "2-byte magic": b"\x00\x00",
    "wrong magic": b"\x01\x02\x08\x03" + bytes(100),
    "unknown type 0x07": bytes([0, 0, 7, 1]) + struct.pack(">I", 3) + bytes(3),
    "0 dimensions": bytes([0, 0, 8, 0]),
    "9 dimensions": bytes([0, 0, 8, 9]) + bytes(36),
    "dims cut short": bytes([0, 0, 8, 3]) + bytes(5),
    "data cut short": idx_bytes(8, [10, 28, 28])[:200],
    "claims 2**96 bytes": bytes([0, 0, 8, 3]) + struct.pack(">III", *[0xFFFFFFFF] * 3),
    "claims 32 GB of doubles": bytes([0, 0, 0x0E, 1]) + struct.pack(">I", 0xFFFFFFFF),
    "gzip cut short": gzip.compress(idx_bytes(8, [50, 28, 28], os.urandom(50 * 784)))[:3000],
    "gzip magic then junk": b"\x1f\x8b" + bytes(range(256)) * 2,
    "valid, 0 items": idx_bytes(8, [0, 28, 28]),
}


@pytest.mark.parametrize("case", list(IDX_CASES))
def test_idx_files_by_hand(case, files, tally):
    outcome = check_idx(files.write("t10k-images-idx3-ubyte", IDX_CASES[case]))
    tally["MNIST IDX", outcome] += 1
    assert outcome == ("ok" if case.startswith("valid") else "error")


@fuzz(80)
@given(
    code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
    dims=st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 6), min_size=0, max_size=5),
    payload=st.binary(max_size=400),
    gz=st.booleans(),
    first=st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x1f\x8b"]),
)
def test_idx_files_fuzzed(code, dims, payload, gz, first, files, tally):
    raw = first + bytes([code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    raw += payload
    outcome = check_idx(files.write("x-idx1-ubyte", gzip.compress(raw) if gz else raw))
    tally["MNIST IDX", outcome] += 1


def _mnist_folder(files, images: bytes | None, labels: bytes | None) -> Path:
    folder = files.path("mnist")
    folder.mkdir()
    if images is not None:
        (folder / "t10k-images-idx3-ubyte").write_bytes(images)
    if labels is not None:
        (folder / "t10k-labels-idx1-ubyte").write_bytes(labels)
    return folder


MNIST_CASES = {
    "images and labels disagree": (idx_bytes(8, [10, 28, 28]), idx_bytes(8, [9])),
    "labels above 9": (idx_bytes(8, [3, 28, 28]), idx_bytes(8, [3], bytes([1, 2, 200]))),
    "labels negative": (idx_bytes(8, [3, 28, 28]), idx_bytes(9, [3], bytes([255, 1, 2]))),
    "labels 2-D": (idx_bytes(8, [3, 28, 28]), idx_bytes(8, [3, 1])),
    "images 1-D": (idx_bytes(8, [3]), idx_bytes(8, [3])),
    "no label file": (idx_bytes(8, [3, 28, 28]), None),
    "label file is junk": (idx_bytes(8, [3, 28, 28]), b"junk"),
    "0 images": (idx_bytes(8, [0, 28, 28]), idx_bytes(8, [0])),
}


@pytest.mark.parametrize("case", list(MNIST_CASES))
def test_mnist_specs_by_hand(case, files, tally):
    folder = _mnist_folder(files, *MNIST_CASES[case])
    with pytest.raises(SnnError) as info:
        open_source(f"mnist:{folder}")
    one_line(info.value, folder)
    tally["mnist: spec", "error"] += 1


# ----------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "good.pt"
    cfg = RunConfig(model="fc_snn", steps=3, model_options={"hidden": 16})
    torch.manual_seed(0)
    opts = model_options(cfg)
    model = build_model(cfg.model, (1, 20, 63), 3, **opts)
    spec = {"name": cfg.model, "input_shape": [1, 20, 63], "n_classes": 3, "options": opts}
    kwargs = dict(
        config=cfg.to_dict(),
        model=spec,
        class_names=["a", "b", "c"],
        weights=model.state_dict(),
        feature_config={"kind": "mfcc", "sample_rate": SR, "duration": 1.0},
        metrics={},
        state={"epoch": 1},
    )
    save_checkpoint(path, **kwargs)
    return path, kwargs


def check_checkpoint(path: Path) -> str:
    """Load it and classify a clip with it: works, or a one-line SnnError naming the file."""
    try:
        ck = load_checkpoint(path)
    except SnnError as exc:
        assert isinstance(exc, CheckpointError)
        one_line(exc, path)
        return "refused on load"
    try:
        pred = Predictor.from_checkpoint(path)
        y = tone(SR)
        out = pred.predict_waveform(y, SR)
    except SnnError as exc:
        one_line(exc, path)
        return "refused by Predictor"
    assert out.label in pred.class_names and np.isfinite(out.probs).all()
    assert ck.class_names == pred.class_names
    return "ok"


@fuzz(40)
@given(
    prefix=st.sampled_from([b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x04\x95"]),
    body=st.binary(max_size=2000),
)
def test_checkpoint_random_bytes(prefix, body, files, tally):
    tally["checkpoint (random bytes)", check_checkpoint(files.write("c.pt", prefix + body))] += 1


@fuzz(30)
@given(
    flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_checkpoint_with_bytes_changed(flips, good_checkpoint, files, tally):
    """A damaged checkpoint is refused with a one-line error or loads and predicts. (Whether
    it may load to silently different weights: ``test_damaged_weights_are_detected``.)"""
    src, kwargs = good_checkpoint
    b = bytearray(src.read_bytes())
    for pos, value in flips:
        b[pos % len(b)] = value
    path = files.write("c.pt", bytes(b))
    outcome = check_checkpoint(path)
    if outcome == "ok":
        weights = load_checkpoint(path).weights
        if any(not torch.equal(weights[k], v) for k, v in kwargs["weights"].items()):
            outcome = "ok, weights silently changed"
    tally["checkpoint (bytes changed)", outcome] += 1


def test_damaged_weights_are_detected(good_checkpoint, files):
    src, _kwargs = good_checkpoint
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)  # the largest tensor
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.file_size // 2] ^= 0xFF
    path = files.write("c.pt", bytes(data))
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    one_line(exc.value, path)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_checkpoint(fraction, good_checkpoint, files, tally):
    data = good_checkpoint[0].read_bytes()
    outcome = check_checkpoint(files.write("c.pt", data[: int(len(data) * fraction)]))
    tally["checkpoint (truncated)", outcome] += 1
    assert outcome == "refused on load"


def _other_weights():
    other = RunConfig(model="csnn", steps=3)
    return build_model("csnn", (1, 20, 63), 3, **model_options(other)).state_dict()


CHECKPOINT_FIELDS = {
    # what is changed in a checkpoint written by the real save_checkpoint
    "weights of another model": {"weights": _other_weights},
    "weights of the wrong shape": {"weights": lambda w: {k: torch.zeros(2) for k in w}},
    "no weights": {"weights": lambda w: {}},
    "unknown model name": {"model": lambda m: {**m, "name": "nope"}},
    "model spec a list": {"model": lambda m: [1, 2]},
    "input shape 2-D": {"model": lambda m: {**m, "input_shape": [1, 20]}},
    "input shape negative": {"model": lambda m: {**m, "input_shape": [1, -20, 63]}},
    "n_classes a word": {"model": lambda m: {**m, "n_classes": "x"}},
    "n_classes 0": {"model": lambda m: {**m, "n_classes": 0}},
    "options a list": {"model": lambda m: {**m, "options": [1]}},
    "options of wrong type": {"model": lambda m: {**m, "options": {**m["options"], "hidden": "x"}}},
    "fewer class names than outputs": {"class_names": lambda c: ["a"]},
    "class names a dict": {"class_names": lambda c: {"a": 1}},
    "feature kind unknown": {"feature_config": lambda f: {"kind": "nope"}},
    "feature config a list": {"feature_config": lambda f: [1]},
    "feature sample rate 0": {"feature_config": lambda f: {**f, "sample_rate": 0}},
    "features of another shape": {"feature_config": lambda f: {**f, "duration": 2.0}},
    "config with an unknown key": {"config": lambda c: {**c, "zzz": 1}},
    "config with a bad value": {"config": lambda c: {**c, "steps": -3}},
    "config a list": {"config": lambda c: [1]},
}


@pytest.mark.parametrize("case", list(CHECKPOINT_FIELDS))
def test_checkpoint_fields_of_the_wrong_kind(case, good_checkpoint, files, tally):
    _src, kwargs = good_checkpoint
    changed = dict(kwargs)
    for key, fn in CHECKPOINT_FIELDS[case].items():
        changed[key] = fn() if fn is _other_weights else fn(kwargs[key])
    path = files.path("c.pt")
    save_checkpoint(path, **changed)
    outcome = check_checkpoint(path)
    tally["checkpoint (fields)", outcome] += 1
    assert outcome != "ok", case


def test_checkpoint_zip_with_junk_members(files, tally):
    for members in ({"archive/data.pkl": os.urandom(300)}, {}, {"x/version": b"3\n"}):
        path = files.path("c.pt")
        with zipfile.ZipFile(path, "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
        tally["checkpoint (zip junk)", check_checkpoint(path)] += 1
    folder = files.path("dir.pt")
    folder.mkdir()
    assert check_checkpoint(folder) == "refused on load"
    tally["checkpoint (zip junk)", "refused on load"] += 1
