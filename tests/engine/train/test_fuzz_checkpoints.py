"""Fuzzing checkpoints: random bytes, changed and truncated files, fields of the wrong kind
and junk zips. Each one is refused on load with one line naming the file, or loads as a whole
checkpoint. ``tally`` counts the inputs tried.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fuzzkit import SR, fuzz, one_line, tone
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import CheckpointError, SnnError
from engine.models.registry import build_model, model_options
from engine.train.checkpoint import Predictor, load_checkpoint, save_checkpoint
from engine.train.config import RunConfig


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
