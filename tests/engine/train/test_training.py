"""The training loop on real data: scikit-learn's digits (always) and an FSDD slice (../shared)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading

import numpy as np
import pytest
import torch

from engine.errors import CheckpointError, ConfigError
from engine.train.checkpoint import Predictor, load_checkpoint
from engine.train.config import RunConfig, load_config
from engine.train.events import (
    Checkpointed,
    EpochEnd,
    RunFinished,
    RunStarted,
    StepEnd,
    Traces,
)
from engine.train.loop import train


@dataclasses.dataclass(frozen=True)
class _Digits:
    """scikit-learn's 8x8 digits (real handwriting, 1797 images) shaped like a FeatureSet."""

    x: np.ndarray
    y: np.ndarray
    splits: dict
    class_names: list
    feature_config: dict
    spec: str = "sklearn:digits"


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    order = np.random.default_rng(0).permutation(len(d.target))
    splits = {"train": order[:600], "val": order[600:800], "test": order[800:1100]}
    return _Digits(
        x, d.target.astype(np.int64), splits, [str(i) for i in range(10)], {"kind": "image"}
    )


SMALL = {"padding": "same", "channels": [6, 12]}


def _cfg(**kw):
    base = dict(model="csnn", steps=4, epochs=3, batch=50, lr=5e-3, model_options=SMALL, seed=3)
    base.update(kw)
    return RunConfig(**base)


def _drive(gen, on_event=None):
    events = []
    while True:
        try:
            ev = next(gen)
        except StopIteration as done:
            return events, done.value
        events.append(ev)
        if on_event is not None and on_event(ev) == "kill":
            gen.close()
            return events, None


def _final(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    weights = load_checkpoint(run_dir / "checkpoint.pt").weights
    return metrics, weights


def _assert_same_run(a, b):
    (ma, wa), (mb, wb) = a, b
    keys = ("train_loss", "train_acc", "val_loss", "val_acc", "synops")
    assert [[h[k] for k in keys] for h in ma["history"]] == [
        [h[k] for k in keys] for h in mb["history"]
    ]
    assert ma["test"] == mb["test"]
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def reference_run(digits, tmp_path_factory):
    run = tmp_path_factory.mktemp("ref")
    events, result = _drive(train(_cfg(), run, data=digits))
    return run, events, result


def test_events_files_and_learning(reference_run):
    run, events, result = reference_run
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted" and kinds[1] == "Traces" and kinds[-1] == "RunFinished"
    assert kinds.count("EpochEnd") == 3 and kinds.count("StepEnd") == 3 * 12
    assert result.status == "completed" and result.test_acc > 0.5  # 10 classes: chance is 0.1
    epoch = [e for e in events if isinstance(e, EpochEnd)][-1]
    assert epoch.confusion.shape == (10, 10) and epoch.confusion.sum() == 200
    assert np.isclose(epoch.val_acc, np.trace(epoch.confusion) / 200)
    assert [s.name for s in epoch.layers] == ["lif1", "lif2", "out"]
    assert all(0 <= s.firing_rate <= 1 and 0 <= s.dead_fraction <= 1 for s in epoch.layers)
    assert epoch.synops > 0 and epoch.macs > 0
    assert epoch.precision.shape == epoch.recall.shape == epoch.f1.shape == (10,)
    # the run folder
    assert {p.name for p in run.iterdir()} >= {
        "config.toml",
        "metrics.json",
        "checkpoint.pt",
        "best.pt",
        "events.jsonl",
        "log.txt",
    }
    assert load_config(run / "config.toml") == _cfg()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == result.test_acc
    assert len(metrics["history"]) == 3 and metrics["class_names"][3] == "3"
    lines = [json.loads(s) for s in (run / "events.jsonl").read_text().splitlines()]
    assert [d["event"] for d in lines].count("EpochEnd") == 3
    assert lines[-1]["event"] == "RunFinished"


def _walk(value, path="event"):
    if isinstance(value, torch.Tensor):
        raise AssertionError(f"{path} is a torch tensor")
    if dataclasses.is_dataclass(value):
        assert type(value).__dataclass_params__.frozen, path
        for f in dataclasses.fields(value):
            _walk(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _walk(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk(v, f"{path}[{k!r}]")


def test_events_are_frozen_and_hold_no_tensors(reference_run):
    _, events, result = reference_run
    for ev in events + [result]:
        _walk(ev, type(ev).__name__)


def test_traces_of_the_tracked_example(reference_run):
    _, events, _ = reference_run
    traces = [e for e in events if isinstance(e, Traces)]
    assert [t.epoch for t in traces] == [0, 1, 2, 3]
    t = traces[-1]
    assert t.input.shape == (8, 8) and t.input_spikes is None  # direct current
    assert [lt.name for lt in t.layers] == ["lif1", "lif2", "out"]
    lif1 = t.layers[0]
    assert lif1.total_neurons == 6 * 4 * 4 and lif1.spikes.shape == (4, 96)
    assert lif1.spikes.dtype == np.uint8 and lif1.mem.shape == (4, 4)
    assert t.output_spikes.shape == (4, 10) and t.threshold == 1.0
    # the same neurons are shown every epoch
    assert np.array_equal(traces[0].layers[1].mem_ids, t.layers[1].mem_ids)


def test_same_seed_gives_identical_results(digits, reference_run, tmp_path):
    run, _, _ = reference_run
    _drive(train(_cfg(), tmp_path / "again", data=digits))
    _assert_same_run(_final(run), _final(tmp_path / "again"))
    _drive(train(_cfg(seed=4), tmp_path / "other", data=digits))
    a = json.loads((run / "metrics.json").read_text())["history"][0]["train_loss"]
    b = json.loads((tmp_path / "other" / "metrics.json").read_text())["history"][0]["train_loss"]
    assert a != b


def test_killed_run_resumes_to_the_uninterrupted_result(digits, reference_run, tmp_path):
    run = tmp_path / "killed"

    def kill_after_first_epoch(ev):
        if isinstance(ev, Checkpointed) and ev.epoch == 1:
            return "kill"  # the process dies right after the epoch checkpoint

    events, result = _drive(train(_cfg(), run, data=digits), kill_after_first_epoch)
    assert result is None and load_checkpoint(run / "checkpoint.pt").state["epoch"] == 1
    with pytest.raises(ConfigError, match="already holds a run"):
        next(train(_cfg(), run, data=digits))
    # what a kill inside a write leaves: a half-written temporary next to the whole file
    (run / f".checkpoint.pt.{os.getpid() + 1}.tmp").write_bytes(b"PK\x03\x04 half")
    (run / ".metrics.json.tmp").write_text('{"status": "runn')
    (run / ".notes").write_text("the user's own hidden file")
    events, result = _drive(train(_cfg(), run, resume=True, data=digits))
    assert sorted(p.name for p in run.glob(".*")) == [".notes"]
    started = events[0]
    assert isinstance(started, RunStarted) and started.resumed and started.start_epoch == 1
    assert sum(isinstance(e, EpochEnd) for e in events) == 2
    _assert_same_run(_final(reference_run[0]), _final(run))


def test_stop_between_batches_then_resume(digits, reference_run, tmp_path):
    run = tmp_path / "stopped"
    stop = threading.Event()

    def stop_at_step_5(ev):
        if isinstance(ev, StepEnd) and ev.epoch == 1 and ev.step == 5:
            stop.set()

    events, result = _drive(train(_cfg(), run, stop=stop, data=digits), stop_at_step_5)
    # nothing more is trained once the stop is seen: a checkpoint, then the end
    i = next(k for k, e in enumerate(events) if isinstance(e, StepEnd) and e.step == 5)
    assert [type(e) for e in events[i + 1 :]] == [Checkpointed, RunFinished]
    assert events[-2].reason == "stop" and result.status == "stopped"
    assert math.isnan(result.test_acc)
    assert load_checkpoint(run / "checkpoint.pt").state["batch"] == 5
    _drive(train(_cfg(), run, resume=True, data=digits))
    _assert_same_run(_final(reference_run[0]), _final(run))


@pytest.mark.filterwarnings("ignore:.*backward hook:UserWarning")
@pytest.mark.parametrize("where", ["forward", "backward", "validation"])
def test_stop_inside_a_pass_discards_it_and_resumes_exactly(digits, reference_run, tmp_path, where):
    """A stop asked for in the middle of a forward, backward or validation pass ends it at once."""
    run = tmp_path / where
    stop = threading.Event()
    calls = {"n": 0, "steps": 0}
    at_step = 12 if where == "validation" else 7  # epoch 1 has 12 batches, then validation

    def hook(*_args):
        if where == "validation":
            wanted = not torch.is_grad_enabled()
        else:  # training passes (the backward hook runs with grad mode off)
            wanted = torch.is_grad_enabled() or where == "backward"
        if wanted and calls["steps"] == at_step:
            calls["n"] += 1
            if calls["n"] == 2:
                stop.set()

    def count(ev):
        if isinstance(ev, StepEnd):
            calls["steps"] += 1

    # a forward PRE-hook: a forward hook would make the CSNN run its blocks module by module
    # (engine.neuro.spike_ops falls back so that the hook sees each module's output), and the run
    # would then differ from the reference run by float rounding
    register = (
        torch.nn.modules.module.register_module_full_backward_hook
        if where == "backward"
        else torch.nn.modules.module.register_module_forward_pre_hook
    )
    handle = register(hook)
    try:
        events, result = _drive(train(_cfg(), run, stop=stop, data=digits), count)
    finally:
        handle.remove()
    assert stop.is_set() and result.status == "stopped"
    assert [e.step for e in events if isinstance(e, StepEnd)][-1] == at_step
    assert not any(isinstance(e, EpochEnd) for e in events)
    state = load_checkpoint(run / "checkpoint.pt").state
    assert (state["epoch"], state["batch"]) == (0, at_step)
    _drive(train(_cfg(), run, resume=True, data=digits))
    _assert_same_run(_final(reference_run[0]), _final(run))


def test_resume_needs_a_checkpoint(digits, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        next(train(_cfg(), tmp_path / "nothing", resume=True, data=digits))


@pytest.mark.parametrize(
    "kw, floor",
    [
        (dict(model="cnn"), 0.6),
        (dict(model="fc_snn", model_options={"hidden": 64}), 0.6),
        (dict(encoder="rate", steps=8), 0.35),
        # one spike per pixel and a first-spike read-out learn slowest (seen: 0.25-0.30)
        (dict(encoder="latency", steps=8, loss="ce_count", predict="first_spike"), 0.2),
        (dict(loss="mse_count", steps=8), 0.35),
        (dict(loss="ce_count", predict="count"), 0.35),
    ],
    ids=["cnn", "fc_snn", "rate", "latency-first-spike", "mse_count", "ce_count"],
)
def test_models_encoders_and_losses_learn(digits, tmp_path, kw, floor):
    _, result = _drive(train(_cfg(**kw), tmp_path / "run", data=digits))
    assert result.test_acc > floor, result.metrics["history"]  # chance is 0.1


def test_class_weighting_and_spec_augment_run(digits, tmp_path):
    # make the training split unbalanced: drop most 0s
    train_idx = digits.splits["train"]
    keep = np.concatenate(
        [train_idx[digits.y[train_idx] != 0], train_idx[digits.y[train_idx] == 0][:5]]
    )
    data = dataclasses.replace(digits, splits={**digits.splits, "train": keep})
    out = {}
    for mode in ("none", "weights", "balanced_sampling"):
        _, result = _drive(
            train(
                _cfg(class_weighting=mode, epochs=1, augment={"spec_time_mask": 2}),
                tmp_path / mode,
                data=data,
            )
        )
        out[mode] = result.metrics["history"][0]["train_loss"]
    assert len(set(out.values())) == 3


def test_predictor_matches_the_test_evaluation(digits, reference_run):
    run, _, result = reference_run
    pred = Predictor.from_checkpoint(run / "best.pt")
    idx = digits.splits["test"]
    labels = [p.index for p in pred.predict_batch(digits.x[idx])]
    assert np.mean(np.asarray(labels) == digits.y[idx]) == pytest.approx(result.test_acc)


@pytest.mark.slow
def test_short_real_training_on_fsdd_beats_chance(fsdd_dir, tmp_path):
    cfg = RunConfig(
        data=f"fsdd:{fsdd_dir}", model="csnn", steps=8, epochs=4, batch=32, limit=900, seed=0
    )
    events, result = _drive(train(cfg, tmp_path / "fsdd"))
    assert result.status == "completed"
    assert result.test_acc >= 0.5, result.metrics["history"]
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.input_shape == (1, 20, 63) and len(started.class_names) == 10
    pred = Predictor.from_checkpoint(tmp_path / "fsdd" / "best.pt")
    wav = sorted(fsdd_dir.glob("7_*_0.wav"))[0]
    assert pred.predict_file(wav).probs.shape == (10,)


def _progress(history, patience, select="best_val"):
    """Feed ``(acc, loss)`` epochs to the early-stopping rule; the epoch it stops at (or None)
    and the best epoch."""
    from engine.train.records import track_progress

    st = {"best_val": -1.0, "best_val_loss": 1e30, "bad_epochs": 0}
    for epoch, (acc, loss) in enumerate(history, start=1):
        track_progress(st, acc, loss, epoch, select)
        if st["bad_epochs"] >= patience:
            return epoch, st["best_epoch"]
    return None, st["best_epoch"]


def test_early_stopping_waits_while_the_validation_loss_falls():
    # Kitchen20 seed 1 fold 5 (scnn_gap): the accuracy peaked at epoch 6 while the loss fell
    # to epoch 11; stopping on accuracy alone ended the run at epoch 12
    acc = [0.06, 0.05, 0.20, 0.41, 0.35, 0.48, 0.26, 0.35, 0.45, 0.41, 0.44, 0.45]
    loss = [3.00, 2.99, 2.66, 2.23, 2.31, 1.94, 2.33, 2.05, 2.02, 1.99, 1.90, 1.97]
    assert _progress(zip(acc, loss), patience=6) == (None, 6)
    # flat accuracy and a loss that stops falling: stops `patience` epochs after the last gain
    flat = [(0.5, 1.0), (0.5, 0.9), (0.5, 0.9), (0.5, 0.95), (0.5, 0.9)]
    assert _progress(flat, patience=3) == (5, 2)
    # a loss gain smaller than LOSS_PROGRESS is no progress
    tiny = [(0.5, 1.0), (0.5, 0.99999), (0.5, 0.99998), (0.5, 0.99997)]
    assert _progress(tiny, patience=3) == (4, 4)
    # a better accuracy alone is progress; a tie on accuracy keeps the lower loss's epoch but
    # is no progress unless that loss is the lowest so far
    assert _progress([(0.4, 1.0), (0.5, 1.2), (0.5, 1.1), (0.5, 1.15)], patience=2) == (4, 3)
    assert _progress([(0.4, 1.0), (0.5, 1.2), (0.5, 0.9), (0.5, 1.15)], patience=2) == (None, 3)
    # a slow drift of the loss adds up to progress
    drift = [(0.5, 1.0 - 0.0004 * i) for i in range(8)]
    assert _progress(drift, patience=3) == (None, 8)


def test_best_loss_keeps_the_lowest_validation_loss():
    acc = [0.06, 0.05, 0.20, 0.41, 0.35, 0.48, 0.26, 0.35, 0.45, 0.41, 0.44, 0.45]
    loss = [3.00, 2.99, 2.66, 2.23, 2.31, 1.94, 2.33, 2.05, 2.02, 1.99, 1.90, 1.97]
    assert _progress(zip(acc, loss), patience=6, select="best_loss") == (None, 11)
    # ties in loss go to the higher accuracy
    assert _progress([(0.4, 1.0), (0.5, 1.0), (0.45, 1.0)], 5, "best_loss") == (None, 2)


def test_patience_ends_a_run_that_stopped_learning(digits, tmp_path):
    # lr 1e-12: every epoch has the same validation accuracy and loss, so the run stops after
    # epoch 1 + patience and tests epoch 1
    cfg = _cfg(lr=1e-12, epochs=8, patience=2, select="best_loss", steps=2)
    events, result = _drive(train(cfg, tmp_path / "run", data=digits))
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in ends] == [1, 2, 3]
    assert result.epochs_done == 3
    fin = [e for e in events if isinstance(e, RunFinished)][-1]
    assert fin.status == "early_stopped", fin
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "no better validation accuracy or loss for 2 epochs" in log


def test_best_loss_tests_the_epoch_with_the_lowest_validation_loss(digits, tmp_path):
    cfg = _cfg(epochs=4, select="best_loss", lr=2e-2, steps=2)
    events, result = _drive(train(cfg, tmp_path / "run", data=digits))
    losses = [e.val_loss for e in events if isinstance(e, EpochEnd)]
    fin = [e for e in events if isinstance(e, RunFinished)][-1]
    assert fin.best_epoch == 1 + int(np.argmin(losses)), losses
    kept = load_checkpoint(tmp_path / "run" / "best.pt")
    assert kept.state["best_epoch"] == fin.best_epoch
    # the model tested is the kept one: the predictor on best.pt reproduces the test accuracy
    pred = Predictor.from_checkpoint(tmp_path / "run" / "best.pt")
    test = digits.splits["test"]
    guess = [p.index for p in pred.predict_batch(digits.x[test])]
    assert np.mean(np.asarray(guess) == digits.y[test]) == pytest.approx(result.test_acc)
