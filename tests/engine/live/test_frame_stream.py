"""The Live path of a model that streams (srnn): only each hop's new frames, state carried."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.audio.features import FeatureConfig, compute_features
from engine.live.frame_stream import streams
from engine.live.window import SlidingWindowClassifier
from engine.models.registry import build_model

SR = 8000
# no clip-level normalisation or dB floor: a frame's features depend on its own samples only
FC = FeatureConfig(
    kind="logmel", sample_rate=SR, duration=0.256, n_mels=12, top_db=None, normalise="none"
)


def _tone(freq, n, rng):
    t = np.arange(n) / SR
    return (
        0.5 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(n)
    ).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class _Tones:
    x: np.ndarray
    y: np.ndarray
    splits: dict
    class_names: list
    feature_config: dict
    spec: str = "test:tones"


@pytest.fixture(scope="module")
def srnn_predictor(tmp_path_factory):
    from engine.train.checkpoint import Predictor
    from engine.train.config import RunConfig
    from engine.train.loop import train

    rng = np.random.default_rng(0)
    y = np.arange(24) % 2
    x = np.stack(
        [compute_features(_tone(500 if c == 0 else 2500, FC.n_samples(), rng), FC) for c in y]
    )
    data = _Tones(
        x[:, None],
        y,
        {"train": np.arange(18), "val": np.arange(18, 24), "test": np.arange(18, 24)},
        ["low", "high"],
        FC.to_dict(),
    )
    cfg = RunConfig(model="srnn", model_options={"hidden": 16}, epochs=2, batch=6, lr=1e-2, seed=0)
    run = tmp_path_factory.mktemp("srnn_run")
    gen = train(cfg, run, data=data)
    for _ in gen:
        pass
    return Predictor.from_checkpoint(run / "best.pt")


def test_each_hop_feeds_only_its_new_frames_and_the_state_carries(srnn_predictor):
    pred = srnn_predictor
    clf = SlidingWindowClassifier(pred, SR, hop_s=0.064, sounds=False, skip_stale=False)
    assert clf.stream is not None
    rng = np.random.default_rng(1)
    stream = np.concatenate([_tone(500, SR // 2, rng), _tone(2500, SR // 2, rng)])
    preds, fed = [], []
    for i in range(0, len(stream), 256):
        for p in clf.push(stream[i : i + 256]):
            preds.append(p)
            fed.append(clf.stream.last_frames.copy())
    hop_frames = 512 // FC.hop_length
    total = FC.frames()
    assert [f.shape[1] for f in fed] == [total - 1] + [hop_frames] * (len(fed) - 1)
    assert all(p.output_spikes.shape == (f.shape[1], 2) for p, f in zip(preds, fed))
    # carried state = one pass of the model over all frames fed
    with torch.no_grad():
        whole = pred.model(torch.from_numpy(np.concatenate(fed, 1))[None, None])
    got = np.concatenate([p.output_spikes for p in preds])
    np.testing.assert_array_equal(got, whole.spikes[:, 0].numpy().astype(np.uint8))
    # after the first window every frame fed is the whole stream's own frame (no edge padding)
    ref = compute_features(stream, FC)
    later = np.concatenate(fed[1:], 1)
    start = (512 - FC.n_samples()) // FC.hop_length + total - 1  # first frame of hop 2
    np.testing.assert_allclose(later, ref[:, start : start + later.shape[1]], rtol=1e-4, atol=1e-4)


def test_models_without_forward_stream_keep_the_window_path():
    csnn = build_model("csnn", (1, 12, FC.frames()), 2, padding="same", channels=[4], kernels=[3])
    assert not streams(SimpleNamespace(model=csnn, feature_config=FC))
    srnn = build_model("srnn", (1, 12, FC.frames()), 2, hidden=8)
    assert streams(SimpleNamespace(model=srnn, feature_config=FC))
