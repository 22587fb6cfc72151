"""engine.train.run_tail: a run folder read back as the events the loop yielded.

- a real (tiny) run's folder gives back the loop's own RunStarted, StepEnd, EpochEnd,
  Checkpointed and RunFinished, field for field, in the loop's order;
- a half-written line waits for its end; a resumed run's rewritten steps.csv is not shown twice.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from engine.atomic import write_atomic
from engine.bench.data_parallel import write_digits_idx
from engine.train.config import RunConfig
from engine.train.events import (
    Checkpointed,
    EpochEnd,
    Preparing,
    RunFinished,
    RunStarted,
    StepEnd,
    Traces,
    to_json,
)
from engine.train.recorded_run import train_recorded
from engine.train.run_exports import STEP_COLUMNS
from engine.train.run_tail import RunTail, event_from_json

CFG = dict(
    model="fc_snn",
    steps=4,
    epochs=2,
    batch=100,
    lr=0.005,
    seed=3,
    device="cpu",
    amp="off",
    model_options={"hidden": 16, "batchnorm": False, "readout_norm": False},
)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits_idx(tmp_path_factory.mktemp("digits-idx"))


def _same(a, b) -> None:
    """Two events equal field by field (arrays by value, NaN equal to NaN)."""
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f.name)
        elif isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), f.name
        else:
            assert x == y, f.name


def test_a_run_folder_reads_back_as_the_loops_events(tmp_path, digits):
    cfg = RunConfig.from_dict({**CFG, "data": f"mnist:{digits}"}, source="test")
    run = tmp_path / "run"
    yielded = list(train_recorded(cfg, run))
    got = RunTail(run).poll()
    kept = (RunStarted, StepEnd, EpochEnd, Checkpointed, RunFinished)
    want = [ev for ev in yielded if isinstance(ev, kept)]
    assert [type(e) for e in got if not isinstance(e, Traces)] == [type(e) for e in want]
    for a, b in zip([e for e in got if not isinstance(e, Traces)], want, strict=True):
        if isinstance(a, RunStarted):
            b = dataclasses.replace(b, config=json.loads(json.dumps(to_json(b)["config"])))
        _same(a, b)
    # the latest traces (traces.npz holds only those), after the last epoch's end
    traces = [i for i, e in enumerate(got) if isinstance(e, Traces)]
    assert len(traces) == 1 and got[traces[0]].epoch == cfg.epochs
    assert isinstance(got[traces[0] - 1], EpochEnd) and got[traces[0] - 1].epoch == cfg.epochs
    assert RunTail(run).poll()[0] == got[0]  # a new tail reads the whole folder again
    assert got and not RunTail(run, resume=True).poll()  # resuming: only what comes next


def test_half_written_lines_wait_and_a_rewritten_steps_file_is_not_shown_twice(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    started = RunStarted(
        run_dir=str(run),
        config={"model": "fc_snn"},
        model="fc_snn",
        spiking=True,
        n_params=10,
        input_shape=(1, 8, 8),
        class_names=("a", "b"),
        n_train=8,
        n_val=2,
        n_test=2,
        device="cpu",
        epochs=2,
        steps_per_epoch=3,
        start_epoch=0,
        resumed=False,
        macs_per_layer={"fc1": 100},
    )
    line = json.dumps(to_json(started)) + "\n"
    events = run / "events.jsonl"
    events.write_text(line[:40])
    tail = RunTail(run)
    assert tail.poll() == []
    with open(events, "a") as fh:
        fh.write(line[40:] + json.dumps(to_json(Preparing("x", 1, 2)))[:10])
    got = tail.poll()
    assert len(got) == 1
    _same(got[0], started)

    def row(g):
        return ",".join(str(v) for v in (g, (g - 1) // 3 + 1, (g - 1) % 3 + 1, 0.5, 1.0, 0.1, 9, 1))

    header = ",".join(STEP_COLUMNS)
    (run / "steps.csv").write_text("\n".join([header, *map(row, range(1, 6))]) + "\n")
    assert [e.global_step for e in tail.poll()] == [1, 2, 3, 4, 5]
    # a resume from the epoch-1 checkpoint of a run killed after step 5: RunStarted(start_epoch=1)
    # is appended, steps.csv rewritten without steps 4 and 5, then the new steps 4, 5, 6 follow
    events.write_text(line)  # (the Preparing fragment above was never finished)
    tail = RunTail(run, resume=True)
    assert tail.poll() == []
    resumed = dataclasses.replace(started, start_epoch=1, resumed=True)
    with open(events, "a") as fh:
        fh.write(json.dumps(to_json(resumed)) + "\n")
    write_atomic(run / "steps.csv", "\n".join([header, *map(row, (1, 2, 3, 4))]) + "\n")
    with open(run / "steps.csv", "a") as fh:
        fh.write(row(5) + "\n" + row(6)[:3])
    got = tail.poll()
    assert isinstance(got[0], RunStarted) and got[0].start_epoch == 1
    assert [(e.global_step, e.epoch, e.step, e.steps_per_epoch) for e in got[1:]] == [
        (4, 2, 1, 3),
        (5, 2, 2, 3),
    ]
    with open(run / "steps.csv", "a") as fh:
        fh.write(row(6)[3:] + "\n")
    assert [e.global_step for e in tail.poll()] == [6]


def test_event_from_json_fills_what_a_line_lacks():
    ev = event_from_json({"event": "RunFinished", "status": "stopped", "test_acc": None})
    assert ev.status == "stopped" and math.isnan(ev.test_acc) and ev.test_confusion is None
    assert ev.epochs_done == 0 and ev.run_dir == ""
    assert event_from_json({"event": "Nonsense"}) is None
