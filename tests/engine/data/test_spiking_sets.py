"""shd:/ssc: data sets read from HDF5 files in the published layout, written here."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch
from fetchkit import write_shd

from engine.data.feature_set import load_feature_set
from engine.data.specs import open_source
from engine.data.spiking_sets import bin_spikes
from engine.errors import DataError
from engine.models.registry import build_model, run_model


def test_bin_spikes_places_each_spike():
    b = bin_spikes(np.array([0.0, 0.019, 0.02, 0.5, 2.0]), np.array([0, 1, 1, 699, 3]), 50, 0.02)
    assert b.shape == (700, 50) and b.dtype == np.float32
    assert b[0, 0] == b[1, 0] == b[1, 1] == b[699, 25] == 1
    assert b.sum() == 4  # the spike at 2.0 s lies after 50 x 20 ms


def test_folder_gives_the_official_split(tmp_path):
    write_shd(tmp_path / "shd_train.h5", n=40, seed=1)
    write_shd(tmp_path / "shd_test.h5", n=12, seed=2)
    src = open_source(f"shd:{tmp_path}?bins=20&dt=0.05")
    assert src.kind == "spikes" and src.class_names == ["word0", "word1", "word2", "word3"]
    assert [it.split for it in src.items].count("test") == 12
    x = src.load(5)
    assert x.shape == (700, 20) and set(np.unique(x)) <= {0.0, 1.0}
    assert x[100:150].sum() > 0 and x[:100].sum() == 0  # item 5 is class 1
    s = src.summary()
    assert s.kind == "spikes" and s.image_shape == (700, 20) and s.n_items == 52
    fs = load_feature_set(src)
    assert fs.x.shape == (52, 1, 700, 20) and len(fs.splits["test"]) == 12
    assert fs.feature_config.kind == "spikes"


def test_ssc_with_valid_file_and_single_file(tmp_path):
    for name, n in (("train", 16), ("valid", 8), ("test", 8)):
        write_shd(tmp_path / f"ssc_{name}.h5", n=n)
    src = open_source(f"ssc:{tmp_path}")
    assert sorted({it.split for it in src.items}) == ["test", "train", "val"]
    one = open_source(f"shd:{tmp_path / 'ssc_test.h5'}")
    assert len(one.items) == 8 and all(it.split is None for it in one.items)


def test_spike_input_model_steps_through_time(tmp_path):
    model = build_model("fc_snn", (1, 700, 20), 4, hidden=16, spike_input=True, input_norm="none")
    assert model.fc1.in_features == 700
    x = torch.zeros(3, 1, 700, 20)
    x[:, 0, 5, 7] = 1
    out = run_model(model, x, encoder="spikes", record=True)
    assert out.spikes.shape[:2] == (20, 3)
    assert out.record["input"][0].shape == (20, 3, 1, 700, 1)


def test_bad_files_are_one_line(tmp_path):
    (tmp_path / "shd_train.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="not a readable SHD/SSC HDF5 file"):
        open_source(f"shd:{tmp_path}")
    with pytest.raises(DataError, match="no shd_train.h5"):
        open_source(f"shd:{tmp_path.parent}")  # a folder without the files
    write_shd(tmp_path / "x.h5")
    with pytest.raises(DataError, match="unknown option 'bin'"):
        open_source(f"shd:{tmp_path / 'x.h5'}?bin=3")
    with pytest.raises(DataError, match="bins=0"):
        open_source(f"shd:{tmp_path / 'x.h5'}?bins=0")


def test_fetched_gz_files_unpack_to_the_layout(tmp_path, media_server):
    srv_dir = tmp_path / "srv"
    srv_dir.mkdir()
    for name, n in (("train", 16), ("test", 8)):
        write_shd(tmp_path / f"shd_{name}.h5", n=n)
        with (
            open(tmp_path / f"shd_{name}.h5", "rb") as a,
            gzip.open(srv_dir / f"shd_{name}.h5.gz", "wb") as b,
        ):
            shutil.copyfileobj(a, b)
    from engine.data.fetch import fetch

    gen = fetch("shd", tmp_path / "data", base_url=media_server(srv_dir).url())
    while True:
        try:
            next(gen)
        except StopIteration as done:
            result = done.value
            break
    assert len(open_source(result.spec).items) == 24
