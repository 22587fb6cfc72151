"""Checkpoints: round trip, atomic write, and refusing anything that is not one (no code runs)."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from engine.errors import CheckpointError, SnnError
from engine.models.registry import build_model, model_options
from engine.train.checkpoint import (
    VERSION,
    Predictor,
    load_checkpoint,
    save_checkpoint,
)
from engine.train.config import RunConfig


def _write(path, cfg=None, **extra):
    cfg = cfg or RunConfig(model="csnn", steps=4)
    torch.manual_seed(0)
    opts = model_options(cfg)
    model = build_model(cfg.model, (1, 20, 63), 3, **opts)
    spec = {"name": cfg.model, "input_shape": [1, 20, 63], "n_classes": 3, "options": opts}
    save_checkpoint(
        path,
        config=cfg.to_dict(),
        model=spec,
        class_names=["yes", "no", "maybe"],
        weights=model.state_dict(),
        feature_config={"kind": "mfcc", "sample_rate": 8000, "duration": 1.0},
        metrics={"history": [{"epoch": 1, "val_acc": 0.5}]},
        state={"epoch": 1},
        **extra,
    )
    return model


def test_round_trip_restores_model_and_metadata(tmp_path):
    path = tmp_path / "c.pt"
    model = _write(path, optimizer={"state": {}, "param_groups": []}, rng={"x": torch.zeros(3)})
    ck = load_checkpoint(path)
    assert ck.version == VERSION
    assert ck.class_names == ["yes", "no", "maybe"]
    assert ck.metrics["history"][0]["val_acc"] == 0.5
    assert ck.run_config() == RunConfig(model="csnn", steps=4)
    assert ck.feature_config["sample_rate"] == 8000
    rebuilt = ck.build()
    for (k, a), b in zip(model.state_dict().items(), rebuilt.state_dict().values()):
        assert torch.equal(a, b), k
    assert not rebuilt.training
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


def test_save_replaces_atomically_and_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "c.pt"
    _write(path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="cannot write"):
        _write(tmp_path / "missing-folder" / "c.pt")
    assert path.read_bytes() == before


def test_random_bytes_and_empty_files_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    for name, data in [("noise.pt", rng.bytes(4096)), ("empty.pt", b""), ("text.pt", b"hello")]:
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(CheckpointError, match="not an snn-explorer checkpoint") as info:
            load_checkpoint(p)
        assert "\n" not in str(info.value) and name in str(info.value)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickles_do_not_run(tmp_path):
    marker = tmp_path / "pwned"
    # 1) a real torch zip whose pickle would call os.system on load
    evil_zip = tmp_path / "evil.pt"
    torch.save({"format": "snn-explorer-checkpoint", "version": 1, "x": _Evil(marker)}, evil_zip)
    # 2) a bare pickle (what old torch.save files and pickle.dump write)
    evil_pkl = tmp_path / "evil.pkl"
    evil_pkl.write_bytes(pickle.dumps(_Evil(marker)))
    for p in (evil_zip, evil_pkl):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(p)
        assert "\n" not in str(info.value)
    assert not marker.exists(), "loading a checkpoint ran code"
    # the same pickle does run code when unpickled naively: the test would catch a regression
    pickle.loads(evil_pkl.read_bytes())
    assert marker.exists()


def test_other_versions_and_foreign_torch_files(tmp_path):
    p = tmp_path / "v2.pt"
    torch.save({"format": "snn-explorer-checkpoint", "version": 2}, p)
    with pytest.raises(CheckpointError, match="version 2; this snn-explorer reads version 1"):
        load_checkpoint(p)
    q = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, q)
    with pytest.raises(CheckpointError, match="no format marker"):
        load_checkpoint(q)
    r = tmp_path / "broken.pt"
    torch.save({"format": "snn-explorer-checkpoint", "version": 1, "config": "{"}, r)
    with pytest.raises(CheckpointError, match="damaged checkpoint"):
        load_checkpoint(r)


def test_truncated_checkpoint_is_refused(tmp_path):
    p = tmp_path / "c.pt"
    _write(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(p)
    assert zipfile.is_zipfile(io.BytesIO(data))


def test_weights_of_another_model_are_refused(tmp_path):
    p = tmp_path / "c.pt"
    _write(p)
    ck = load_checkpoint(p)
    bad = type(ck)(**{**ck.__dict__, "model": {**ck.model, "n_classes": 5}})
    with pytest.raises(CheckpointError, match="do not fit model 'csnn'"):
        bad.build()


def test_predictor_classifies_features_and_checks_shapes(tmp_path):
    p = tmp_path / "c.pt"
    model = _write(p)
    pred = Predictor.from_checkpoint(p)
    assert pred.class_names == ["yes", "no", "maybe"]
    assert pred.feature_config.sample_rate == 8000
    x = np.random.default_rng(0).normal(size=(1, 20, 63)).astype(np.float32)
    one = pred.predict_features(x)
    assert one.label in pred.class_names and one.probs.shape == (3,)
    assert one.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert one.output_spikes.shape == (4, 3)
    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)[None], steps=4)
    assert np.array_equal(one.output_spikes, ref.spikes[:, 0].numpy().astype(np.uint8))
    with pytest.raises(SnnError, match=r"does not fit this model"):
        pred.predict_features(np.zeros((20, 50), np.float32))
    wave = np.sin(np.arange(16000) / 7.0).astype(np.float32)
    assert pred.predict_waveform(wave, 16000).probs.shape == (3,)


def _rewrite(src, dst, **changes):
    """Save ``src``'s checkpoint again with some parts changed (through the real writer)."""
    ck = load_checkpoint(src)
    parts = dict(
        config=ck.config,
        model=ck.model,
        class_names=ck.class_names,
        weights=ck.weights,
        feature_config=ck.feature_config,
        metrics=ck.metrics,
        state=ck.state,
    )
    parts.update(changes)
    save_checkpoint(dst, **parts)
    return dst


@pytest.mark.parametrize(
    "change, match",
    [
        ({"class_names": ["a"]}, "class names are not a list of 3 names"),
        ({"model": "csnn"}, "model spec is not a table"),
        ({"config": {"steps": -3}}, "steps: -3 must be at least 1"),
        ({"feature_config": [1]}, "feature config is not a table"),
    ],
)
def test_inconsistent_parts_are_refused_on_load(tmp_path, change, match):
    src = tmp_path / "good.pt"
    _write(src)
    bad = _rewrite(src, tmp_path / "bad.pt", **change)
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(bad)
    assert str(bad) in str(info.value)


def test_predictor_errors_name_the_checkpoint(tmp_path):
    src = tmp_path / "good.pt"
    _write(src)
    ck = load_checkpoint(src)
    other = _rewrite(
        src, tmp_path / "two-seconds.pt", feature_config={**ck.feature_config, "duration": 2.0}
    )
    with pytest.raises(CheckpointError, match=r"two-seconds\.pt: its feature settings give"):
        Predictor.from_checkpoint(other)
    opts = _rewrite(src, tmp_path / "opts.pt", model={**ck.model, "options": {"hidden": "x"}})
    with pytest.raises(CheckpointError, match=r"opts\.pt: model_options"):
        Predictor.from_checkpoint(opts)


def test_a_flipped_byte_inside_a_tensor_is_detected(tmp_path):
    p = tmp_path / "c.pt"
    _write(p)
    data = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)  # the largest tensor
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.file_size // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its CRC check"):
        load_checkpoint(p)
