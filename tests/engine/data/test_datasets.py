"""engine.data.specs (spec strings, folder/CSV/FSDD/MNIST sources, bad files, splits) and
engine.data.balance."""

from __future__ import annotations

import gzip
import importlib.util
import struct

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.balance import balanced_sample_weights, class_counts, class_weights
from engine.data.specs import (
    DataSource,
    Item,
    guess_spec,
    open_source,
    parse_spec,
    split_indices,
)
from engine.errors import ConfigError, DataError


def wav(path, seconds=0.5, sr=8000, seed=0, channels=1):
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    y = (0.1 * rng.standard_normal((n, channels))).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y if channels > 1 else y[:, 0], sr, subtype="PCM_16")
    return path


# ----------------------------------------------------------------------------- spec strings
def test_parse_spec_kinds_and_errors(tmp_path):
    assert parse_spec("fsdd:/x/y") == ("fsdd", "/x/y")
    assert parse_spec("CSV: a.csv ") == ("csv", "a.csv")
    for bad, pattern in [
        ("", "no data set"),
        ("wav:/tmp", "unknown data set kind 'wav'"),
        ("folder:", "no path"),
        (str(tmp_path / "nope"), "no such file"),
    ]:
        with pytest.raises(DataError, match=pattern):
            parse_spec(bad)


def test_missing_path_is_one_clear_line(tmp_path):
    with pytest.raises(DataError) as err:
        open_source(f"folder:{tmp_path}/absent")
    assert "absent" in str(err.value) and "\n" not in str(err.value)


def test_guess_spec(tmp_path):
    wav(tmp_path / "fsdd" / "3_theo_7.wav")
    wav(tmp_path / "classes" / "dog" / "a.wav")
    (tmp_path / "m.csv").write_text("a.wav,dog\n")
    assert guess_spec(str(tmp_path / "fsdd")).startswith("fsdd:")
    assert guess_spec(str(tmp_path / "classes")).startswith("folder:")
    assert guess_spec(str(tmp_path / "m.csv")).startswith("csv:")


# ----------------------------------------------------------------------------- folder
def test_folder_source_with_numbered_names_and_bad_files(tmp_path):
    root = tmp_path / "set"
    for i in range(3):
        wav(root / "001 - Dog bark" / f"d{i}.wav", seed=i)
        wav(root / "002 - Siren" / "sub" / f"s{i}.flac", seed=10 + i, sr=16000, channels=2)
    good = (root / "001 - Dog bark" / "d0.wav").read_bytes()
    (root / "001 - Dog bark" / "empty.wav").write_bytes(b"")
    (root / "001 - Dog bark" / "cut.wav").write_bytes(good[: len(good) // 3])
    (root / "002 - Siren" / "notes.wav").write_text("not audio, just notes " * 10)
    (root / "002 - Siren" / "readme.txt").write_text("hello")
    (root / "002 - Siren" / ".DS_Store").write_bytes(b"\0\0")
    wav(root / "stray.wav")
    src = open_source(f"folder:{root}")
    assert src.kind == "audio" and src.class_names == ["001 - Dog bark", "002 - Siren"]
    assert len(src) == 6 and sorted(src.labels().tolist()) == [0, 0, 0, 1, 1, 1]
    reasons = {p.split("/")[-1]: r for p, r in src.skipped}
    assert reasons["empty.wav"].startswith("empty file")
    assert reasons["cut.wav"].startswith("truncated WAV")
    assert "not a readable audio file" in reasons["notes.wav"]
    assert reasons["readme.txt"].startswith("not an audio file")
    assert reasons["stray.wav"] == "audio file outside any class folder"
    assert ".DS_Store" not in reasons
    s = src.summary()
    assert s.n_skipped == 5 and s.n_items == 6
    assert s.sample_rates == {8000: 3, 16000: 3} and s.channels == {1: 3, 2: 3}
    assert s.total_duration == pytest.approx([1.5, 1.5])
    assert any("skipped    5" in line for line in s.lines())
    y = src.load(3)
    assert y.dtype == np.float32 and y.ndim == 1 and src.sample_rate(3) == 16000
    assert s.to_dict()["n_skipped"] == 5


def test_folder_class_without_audio_is_an_error(tmp_path):
    wav(tmp_path / "a" / "x.wav")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="class folder 'b' holds no audio files"):
        open_source(f"folder:{tmp_path}")
    (tmp_path / "b" / "bad.wav").write_bytes(b"")
    with pytest.raises(DataError, match="'b' holds no readable audio"):
        open_source(f"folder:{tmp_path}")


def test_folder_without_class_folders(tmp_path):
    wav(tmp_path / "x.wav")
    with pytest.raises(DataError, match="no class sub-folders"):
        open_source(f"folder:{tmp_path}")


# ----------------------------------------------------------------------------- CSV
def test_csv_manifest_relative_paths_split_and_group(tmp_path):
    for i in range(4):
        wav(tmp_path / "clips" / f"c{i}.wav", seed=i)
    (tmp_path / "lists").mkdir()
    manifest = tmp_path / "lists" / "m.csv"
    manifest.write_text(
        "path,label,split,group\n"
        "../clips/c0.wav,10,train,g1\n"
        "../clips/c1.wav,2,test,g2\n"
        "../clips/c2.wav,2,validation,g3\n"
        "../clips/c3.wav,10,,g1\n"
        "../clips/missing.wav,2,train,g4\n"
    )
    src = open_source(f"csv:{manifest}")
    assert src.class_names == ["2", "10"]  # numeric labels sort as numbers
    assert [it.split for it in src.items] == ["train", "test", "val", None]
    assert [it.group for it in src.items] == ["g1", "g2", "g3", "g1"]
    assert src.skipped and src.skipped[0][1] == "no such file"
    sp = split_indices(src)
    assert sp["test"].tolist() == [1] and sp["val"].tolist() == [2]
    assert sp["train"].tolist() == [0, 3]
    assert set(src.summary().split_counts) == {"train", "val", "test"}


def test_csv_without_header_or_split(tmp_path):
    for i in range(6):
        wav(tmp_path / f"{i}.wav", seed=i)
    (tmp_path / "m.csv").write_text(
        "".join(f"{i}.wav,{'cat' if i % 2 else 'dog'}\n" for i in range(6))
    )
    src = open_source(f"csv:{tmp_path / 'm.csv'}")
    assert src.class_names == ["cat", "dog"] and len(src) == 6
    assert not src.summary().split_counts


@pytest.mark.parametrize(
    "text,pattern",
    [
        ("", "empty"),
        ("a.wav\n", "line 1: expected path,label"),
        ("path,label,split\na.wav,dog,holdout\n", "line 2: split 'holdout'"),
        ("path,kind\na.wav,dog\n", "no 'label' column"),
    ],
)
def test_csv_errors(tmp_path, text, pattern):
    wav(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(DataError, match=pattern):
        open_source(f"csv:{tmp_path / 'm.csv'}")


# ----------------------------------------------------------------------------- FSDD
def test_fsdd_layout_generated(tmp_path):
    for d in range(10):
        for spk in ("ann", "bob"):
            for idx in (0, 4, 5, 30):
                wav(tmp_path / f"{d}_{spk}_{idx}.wav", seconds=0.2, seed=d)
    wav(tmp_path / "other.wav")
    src = open_source(f"fsdd:{tmp_path}")
    assert len(src) == 80 and src.class_names == [str(d) for d in range(10)]
    assert src.skipped == [
        (str(tmp_path / "other.wav"), "name is not {digit}_{speaker}_{index}.wav")
    ]
    sp = split_indices(src, seed=0)
    assert len(sp["test"]) == 40
    test_names = {src.items[i].path.rsplit("_", 1)[1] for i in sp["test"]}
    assert test_names == {"0.wav", "4.wav"}
    # the data set's root (recordings/ inside, as a clone of it has) is read the same
    root = tmp_path.parent / "free-spoken-digit-dataset"
    root.mkdir()
    (root / "README.md").write_text("FSDD")
    tmp_path.rename(root / "recordings")
    again = open_source(f"fsdd:{root}")
    assert len(again) == 80 and again.items[0].path.startswith(str(root / "recordings"))


def test_fsdd_real_summary_and_official_split(fsdd_dir):
    src = open_source(f"fsdd:{fsdd_dir}")
    s = src.summary()
    assert s.n_classes == 10 and s.counts.tolist() == [300] * 10 and s.n_skipped == 0
    assert {k: int(v.sum()) for k, v in s.split_counts.items()} == {"train": 2700, "test": 300}
    assert s.sample_rates == {8000: 3000}
    assert 0.1 < s.min_duration < s.max_duration < 3
    sp = split_indices(src, seed=0)
    assert len(sp["test"]) == 300 and len(sp["val"]) == 270 and len(sp["train"]) == 2430
    # validation mirrors the official test split: every speaker in it, stratified by digit
    val_counts = np.bincount(src.labels()[sp["val"]], minlength=10)
    assert val_counts.tolist() == [27] * 10
    assert {src.items[i].group for i in sp["val"]} == {it.group for it in src.items}


# ----------------------------------------------------------------------------- MNIST
def write_idx(path, arr, gz=False):
    arr = np.asarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def test_mnist_generated_uncompressed(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 28, 28))
    labels = np.arange(50) % 10
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, gz=True)
    src = open_source(f"mnist:{tmp_path}")
    assert src.kind == "image" and len(src) == 50
    assert [it.split for it in src.items].count("test") == 10
    np.testing.assert_allclose(src.load(7), images[7] / 255.0, atol=1e-7)
    assert src.summary().image_shape == (28, 28)


def test_mnist_empty_or_nan_images(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((0, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(0))
    with pytest.raises(DataError, match="holds no images"):
        open_source(f"mnist:{tmp_path}")
    images = np.full((3, 4, 4), 0.5, dtype=">f4")
    images[1, 2, 2] = np.nan
    head = bytes([0, 0, 0x0D, 3]) + struct.pack(">3I", 3, 4, 4)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(head + images.tobytes())
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(3))
    with pytest.raises(DataError, match="NaN"):
        open_source(f"mnist:{tmp_path}")


def test_mnist_missing_files(tmp_path):
    with pytest.raises(DataError, match="t10k-images"):
        open_source(f"mnist:{tmp_path}")


def test_mnist_real(mnist_dir):
    src = open_source(f"mnist:{mnist_dir}")
    s = src.summary()
    assert s.n_items == 10000 and s.n_classes == 10
    assert {k: int(v.sum()) for k, v in s.split_counts.items()} == {"train": 8000, "test": 2000}
    sp = split_indices(src, seed=1)
    assert sp["test"].tolist() == list(range(8000, 10000))
    assert len(sp["val"]) == 800 and len(sp["train"]) == 7200
    assert abs(float(np.mean([src.load(i).mean() for i in range(0, 10000, 50)])) - 0.1325) < 0.01


def test_audioset_hook(tmp_path):
    if importlib.util.find_spec("engine.audioset.selection") is None:
        with pytest.raises(DataError, match="engine.audioset.selection"):
            open_source(f"audioset:{tmp_path}")
    else:
        with pytest.raises(DataError):
            open_source(f"audioset:{tmp_path}/absent")


# ----------------------------------------------------------------------------- splits
class FakeSource(DataSource):
    """Items only (splits never load audio)."""

    def __init__(self, labels, groups=None, splits=None):
        items = [
            Item(
                f"f{i}",
                int(lab),
                None if splits is None else splits[i],
                None if groups is None else groups[i],
                i,
            )
            for i, lab in enumerate(labels)
        ]
        super().__init__("fake:", [str(c) for c in range(max(labels) + 1)], items)


def check_partition(sp, n):
    allidx = np.concatenate([sp["train"], sp["val"], sp["test"]])
    assert sorted(allidx.tolist()) == list(range(n))
    assert all(v.dtype == np.int64 for v in sp.values())


def test_stratified_split_sizes_and_seed():
    labels = [0] * 100 + [1] * 50 + [2] * 20
    src = FakeSource(labels)
    sp = split_indices(src, seed=0, val_fraction=0.1, test_fraction=0.2)
    check_partition(sp, 170)
    y = np.array(labels)
    assert np.bincount(y[sp["test"]]).tolist() == [20, 10, 4]
    assert np.bincount(y[sp["val"]]).tolist() == [10, 5, 2]
    again = split_indices(src, seed=0, val_fraction=0.1, test_fraction=0.2)
    other = split_indices(src, seed=1, val_fraction=0.1, test_fraction=0.2)
    assert np.array_equal(sp["test"], again["test"]) and not np.array_equal(
        sp["test"], other["test"]
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 12)), min_size=8, max_size=80),
    st.integers(0, 2**31 - 1),
)
def test_groups_never_cross_splits(pairs, seed):
    labels = [p[0] for p in pairs]
    groups = [f"g{p[1]}" for p in pairs]
    src = FakeSource(labels, groups)
    sp = split_indices(src, seed=seed, val_fraction=0.2, test_fraction=0.2)
    check_partition(sp, len(labels))
    owner = {}
    for name, idx in sp.items():
        for i in idx:
            assert owner.setdefault(groups[i], name) == name


def test_grouped_split_is_roughly_stratified():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 100)
    groups = [f"s{i % 40}" for i in range(400)]  # 40 speakers, 10 clips each
    rng.shuffle(labels)
    sp = split_indices(FakeSource(labels.tolist(), groups), seed=0)
    assert 30 <= len(sp["test"]) <= 50 and 30 <= len(sp["val"]) <= 50


def test_bad_fractions():
    src = FakeSource([0, 1] * 5)
    with pytest.raises(ConfigError):
        split_indices(src, val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ConfigError):
        split_indices(src, val_fraction=-0.1)


# ----------------------------------------------------------------------------- balance
def test_class_counts_and_weights():
    y = np.array([0, 0, 0, 1, 2, 2])
    assert class_counts(y).tolist() == [3, 1, 2]
    assert class_counts(y, np.array([0, 3]), n_classes=4).tolist() == [1, 1, 0, 0]
    w = class_weights(y)
    np.testing.assert_allclose(w, [6 / 9, 2.0, 1.0], rtol=1e-6)
    # weighted counts are equal across classes: the loss sees each class equally
    np.testing.assert_allclose(w * class_counts(y), [2, 2, 2], rtol=1e-6)
    assert class_weights(y, np.array([0, 1, 2]), n_classes=3).tolist() == [1.0, 0.0, 0.0]
    np.testing.assert_allclose(class_weights(np.array([0, 1, 0, 1])), [1, 1])


def test_balanced_sampler_weights_draw_classes_equally():
    y = np.array([0] * 90 + [1] * 10)
    idx = np.arange(100)
    w = balanced_sample_weights(y, idx)
    assert w.shape == (100,) and abs(w.sum() - 1) < 1e-12
    assert abs(w[y == 0].sum() - 0.5) < 1e-12 and abs(w[y == 1].sum() - 0.5) < 1e-12
    draws = np.random.default_rng(0).choice(idx, size=20000, p=w)
    assert abs(np.mean(y[draws]) - 0.5) < 0.02
