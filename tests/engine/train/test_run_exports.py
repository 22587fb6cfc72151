"""Run files other tools read: metrics.csv, steps.csv (every run) and TensorBoard (on request).

Real tiny runs on scikit-learn's bundled digits; the CSVs are read back with the csv module and
the TensorBoard files with TensorBoard's own reader.
"""

from __future__ import annotations

import csv
import threading

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.train.config import RunConfig
from engine.train.events import EpochEnd, StepEnd
from engine.train.history import RunHistory
from engine.train.loop import train
from engine.train.recorded_run import digits_feature_set, train_recorded
from engine.train.run_exports import (
    EPOCH_COLUMNS,
    STEP_COLUMNS,
    CsvLog,
    read_steps,
    read_table,
)
from engine.train.run_folder import EPOCHS_CSV, STEPS_CSV, TENSORBOARD_DIR, read_run

SMALL = {"model": "csnn", "steps": 2, "batch": 64, "epochs": 2, "limit": 200, "seed": 1}


def _drive(gen, on_event=None):
    events = []
    while True:
        try:
            ev = next(gen)
        except StopIteration as done:
            return events, done.value
        events.append(ev)
        if on_event:
            on_event(ev)


@pytest.fixture(scope="module")
def digits():
    return digits_feature_set(16)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_run_writes_steps_and_epochs_as_csv(tmp_path, digits):
    run = tmp_path / "run"
    events, result = _drive(train(RunConfig(**SMALL), run, data=digits))
    assert result.status == "completed"
    steps = [e for e in events if isinstance(e, StepEnd)]
    epochs = [e for e in events if isinstance(e, EpochEnd)]

    rows = _rows(run / STEPS_CSV)
    assert tuple(rows[0]) == STEP_COLUMNS
    assert [int(r["global_step"]) for r in rows] == [e.global_step for e in steps]
    assert [float(r["loss"]) for r in rows] == [e.loss for e in steps]  # repr: exact round trip

    rows = _rows(run / EPOCHS_CSV)
    assert tuple(rows[0]) == EPOCH_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["val_acc"]) for r in rows] == [e.val_acc for e in epochs]

    # the reopened run draws its per-step losses from steps.csv
    h = RunHistory.from_run(read_run(run))
    assert h.step_x == [float(e.global_step) for e in steps]
    assert h.step_loss == pytest.approx([e.loss for e in steps])


def test_a_resumed_run_continues_the_tables_without_repeats(tmp_path, digits):
    run = tmp_path / "run"
    stop = threading.Event()

    def stop_after_third_step(ev):
        if isinstance(ev, StepEnd) and ev.global_step == 3:
            stop.set()

    events, result = _drive(
        train(RunConfig(**SMALL), run, data=digits, stop=stop), stop_after_third_step
    )
    assert result.status == "stopped"
    # a killed session may have written rows after the checkpoint: fake one
    with open(run / STEPS_CSV, "a") as fh:
        fh.write("4,1,4,9.9,0.1,0.001,1.0,1.0\n")
    events, result = _drive(train(RunConfig(**SMALL), run, data=digits, resume=True))
    assert result.status == "completed"
    x, loss = read_steps(run)
    per_epoch = next(e for e in events if isinstance(e, StepEnd)).steps_per_epoch
    assert x.tolist() == list(range(1, 2 * per_epoch + 1))
    assert 9.9 not in loss.tolist()
    assert read_table(run / EPOCHS_CSV)["epoch"].tolist() == [1, 2]


def test_csv_log_leaves_out_a_half_written_line(tmp_path):
    log = CsvLog(tmp_path / "t.csv", ("k", "v"), "k")
    log.append({"k": 1, "v": 0.5})
    log.append({"k": 2, "v": float("nan")})
    with open(tmp_path / "t.csv", "a") as fh:
        fh.write("3,0.")  # a writer caught mid-line
    t = read_table(tmp_path / "t.csv")
    assert t["k"].tolist() == [1, 2]
    assert t["v"][0] == 0.5 and np.isnan(t["v"][1])
    assert read_table(tmp_path / "absent.csv") == {}


def test_tensorboard_scalars_are_readable_by_tensorboard(tmp_path, digits):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    cfg = RunConfig(**{**SMALL, "epochs": 1})
    events, result = _drive(train_recorded(cfg, run, data=digits, tensorboard=True))
    acc = EventAccumulator(str(run / TENSORBOARD_DIR))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss/train_step", "loss/val", "accuracy/val", "accuracy/test", "lr"} <= tags
    assert any(t.startswith("firing_rate/") for t in tags)
    steps = [e for e in events if isinstance(e, StepEnd)]
    assert [s.step for s in acc.Scalars("loss/train_step")] == [e.global_step for e in steps]
    val = acc.Scalars("accuracy/val")
    assert val[0].value == pytest.approx(next(e for e in events if isinstance(e, EpochEnd)).val_acc)
    assert acc.Scalars("accuracy/test")[0].value == pytest.approx(result.test_acc)


def test_tensorboard_missing_is_one_line(tmp_path, digits, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    with pytest.raises(ConfigError, match="tensorboard package"):
        next(train_recorded(RunConfig(**SMALL), tmp_path / "run", data=digits, tensorboard=True))
