"""speechcommands:PATH with the published folder layout and split lists, written here."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from fetchkit import tone

from engine.data.specs import open_source
from engine.errors import DataError


def _layout(root, words=("no", "yes"), speakers=("aa11", "bb22", "cc33", "dd44")):
    for w, word in enumerate(words):
        (root / word).mkdir(parents=True)
        for s in speakers:
            for n in range(2):
                sf.write(
                    root / word / f"{s}_nohash_{n}.wav", tone(300 + 200 * w, 1.0, 16000), 16000
                )
    (root / "no" / "notes.txt").write_text("x")
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "white.wav", np.zeros(16000, np.float32), 16000)
    (root / "validation_list.txt").write_text("no/cc33_nohash_0.wav\nyes/cc33_nohash_0.wav\n")
    (root / "testing_list.txt").write_text(
        "no/dd44_nohash_0.wav\nno/dd44_nohash_1.wav\nyes/dd44_nohash_0.wav\n"
    )
    return root


def test_official_split_groups_and_background(tmp_path):
    root = _layout(tmp_path / "sc")
    src = open_source(f"speechcommands:{root}")
    assert src.class_names == ["no", "yes"]  # _background_noise_ is no class
    assert len(src.items) == 16
    split = {(it.path.split("/")[-2], it.path.split("/")[-1]): it.split for it in src.items}
    assert split[("no", "dd44_nohash_1.wav")] == "test"
    assert split[("yes", "cc33_nohash_0.wav")] == "val"
    assert split[("yes", "cc33_nohash_1.wav")] == "train"
    assert sum(it.split == "test" for it in src.items) == 3
    assert sum(it.split == "val" for it in src.items) == 2
    assert {it.group for it in src.items} == {"aa11", "bb22", "cc33", "dd44"}
    assert src.background_dir == str(root / "_background_noise_")
    assert [r for _p, r in src.skipped] == ["not a .wav clip"]
    assert src.summary().split_counts["test"].tolist() == [2, 1]


def test_missing_lists_and_empty_words_are_one_line(tmp_path):
    root = _layout(tmp_path / "sc")
    (root / "testing_list.txt").unlink()
    with pytest.raises(DataError, match=r"no testing_list.txt in .*Speech Commands"):
        open_source(f"speechcommands:{root}")
    root = _layout(tmp_path / "sc2")
    (root / "up").mkdir()
    with pytest.raises(DataError, match="word folder 'up' holds no readable clip"):
        open_source(f"speechcommands:{root}")
    with pytest.raises(DataError, match="no such folder"):
        open_source(f"speechcommands:{tmp_path / 'none'}")
