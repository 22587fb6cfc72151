"""Run folders: reading what ``train`` wrote, the live history, comparison rows, traces on disk.

Real tiny runs on scikit-learn's bundled digits (no download) and on a slice of FSDD.
"""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from engine.errors import DataError
from engine.train.checkpoint import load_checkpoint
from engine.train.config import RunConfig
from engine.train.events import RunFinished, RunStarted, StepEnd, Traces
from engine.train.history import RunHistory
from engine.train.recorded_run import (
    digits_feature_set,
    fsdd_slice,
    load_traces,
    save_traces,
    train_recorded,
)
from engine.train.run_folder import (
    COMPARISON_COLUMNS,
    accuracy_curves,
    comparison_row,
    is_run_dir,
    list_runs,
    new_run_dir,
    read_events,
    read_run,
)

SMALL = {"steps": 4, "batch": 32, "epochs": 2, "limit": 300, "seed": 3}


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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, digits):
    """A completed 2-epoch CSNN run, with every event it yielded."""
    run = tmp_path_factory.mktemp("runs") / "csnn-run"
    cfg = RunConfig(model="csnn", **SMALL)
    events, result = _drive(train_recorded(cfg, run, data=digits))
    return run, events, result


def test_a_finished_run_reads_back_as_train_wrote_it(finished_run):
    run, events, result = finished_run
    info = read_run(run)
    started = next(e for e in events if isinstance(e, RunStarted))
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "completed"
    assert info.status == "completed" and result.status == "completed"
    assert info.model == "csnn" and info.class_names == [str(d) for d in range(10)]
    assert info.checkpoint.endswith("checkpoint.pt") and info.best.endswith("best.pt")
    assert len(info.history) == 2
    assert info.metrics["params"] == started.n_params
    # the per-epoch accuracies on disk are the ones the events carried
    epochs, train, val = accuracy_curves(info)
    live = [e for e in events if type(e).__name__ == "EpochEnd"]
    np.testing.assert_allclose(val, [e.val_acc for e in live])
    np.testing.assert_allclose(train, [e.train_acc for e in live])
    np.testing.assert_array_equal(epochs, [1, 2])


def test_comparison_row_holds_what_the_table_needs(finished_run):
    run, events, _ = finished_run
    info = read_run(run)
    row = comparison_row(info)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert row.params == started.n_params
    assert row.best_val_acc == pytest.approx(info.metrics["best_val_acc"])
    assert row.test_acc == pytest.approx(events[-1].test_acc)
    assert row.epochs_done == 2 and row.spiking
    assert row.epoch_time_s > 0
    assert row.synops > 0 and row.macs > 0
    usage = json.loads((run / "usage.json").read_text())
    assert row.peak_memory_bytes == usage["peak_memory_bytes"] > 10 * 2**20
    cells = row.cells()
    assert len(cells) == len(COMPARISON_COLUMNS)
    assert cells[COMPARISON_COLUMNS.index("parameters")] == f"{started.n_params:,}"


def test_traces_file_holds_the_last_traces_event(finished_run):
    run, events, _ = finished_run
    last = [e for e in events if isinstance(e, Traces)][-1]
    back = load_traces(run / "traces.npz")
    assert back is not None and back.epoch == last.epoch == 2
    assert (back.label, back.predicted, back.threshold) == (
        last.label,
        last.predicted,
        last.threshold,
    )
    np.testing.assert_array_equal(back.input, last.input)
    np.testing.assert_array_equal(back.output_spikes, last.output_spikes)
    assert [L.name for L in back.layers] == [L.name for L in last.layers]
    for a, b in zip(back.layers, last.layers):
        np.testing.assert_array_equal(a.spikes, b.spikes)
        np.testing.assert_array_equal(a.mem, b.mem)
        assert (a.total_neurons, a.spike_count) == (b.total_neurons, b.spike_count)


def test_history_from_disk_matches_the_live_history(finished_run):
    run, events, _ = finished_run
    live = RunHistory()
    for ev in events:
        live.add(ev)
    disk = RunHistory.from_run(read_run(run))
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        np.testing.assert_allclose(disk.epoch_column(key), live.epoch_column(key))
    np.testing.assert_array_equal(disk.confusion, live.confusion)
    assert disk.confusion_title == live.confusion_title and "test" in live.confusion_title
    for a, b in zip(disk.prf, live.prf):
        np.testing.assert_allclose(a, b)
    assert disk.layer_series("firing_rates").keys() == live.layer_series("firing_rates").keys()
    assert disk.finished.status == live.finished.status == "completed"
    assert disk.fraction == live.fraction == 1.0
    assert disk.traces is not None and disk.traces.epoch == live.traces.epoch
    n_steps = sum(isinstance(e, StepEnd) for e in events)
    assert len(live.step_loss) == n_steps
    assert disk.step_x == live.step_x and disk.step_loss == pytest.approx(live.step_loss)
    assert any("epoch 2/2" in line for line in disk.log)


def test_smoothed_loss_is_a_bias_corrected_moving_average():
    h = RunHistory()
    h.step_loss = [2.0, 2.0, 2.0]
    np.testing.assert_allclose(h.smoothed_loss(0.9), [2.0, 2.0, 2.0])
    h.step_loss = [1.0, 3.0]
    # by hand: acc1 = 0.1, acc2 = 0.09 + 0.3 = 0.39; corrections 0.1 and 0.19
    np.testing.assert_allclose(h.smoothed_loss(0.9), [1.0, 0.39 / 0.19])


def test_a_stopped_run_says_so_and_resumes(tmp_path, digits):
    run = tmp_path / "stopped"
    cfg = RunConfig(model="fc_snn", **{**SMALL, "epochs": 3})
    stop = threading.Event()

    def on_event(ev):
        if isinstance(ev, StepEnd) and ev.epoch == 2 and ev.step == 2:
            stop.set()

    events, result = _drive(train_recorded(cfg, run, stop=stop, data=digits), on_event)
    assert result.status == "stopped"
    info = read_run(run)
    assert info.status == "stopped"
    ckpt = load_checkpoint(info.checkpoint)
    assert ckpt.state["epoch"] == 1 and ckpt.state["batch"] == 2  # stopped inside epoch 2
    h = RunHistory.from_run(info)
    assert h.finished.status == "stopped" and len(h.epochs) == 1
    assert 0 < h.fraction < 1
    _events, resumed = _drive(train_recorded(cfg, run, resume=True, data=digits))
    assert resumed.status == "completed"
    assert read_run(run).status == "completed" and len(read_run(run).history) == 3


def test_list_runs_skips_what_is_not_a_run(tmp_path, finished_run):
    run, _, _ = finished_run
    root = tmp_path / "runs"
    root.mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "a.txt").write_text("hello")
    broken = root / "broken"
    broken.mkdir()
    (broken / "config.toml").write_text("this is = not [toml")
    (broken / "metrics.json").write_text("{}")
    good = root / "good"
    good.mkdir()
    for name in ("config.toml", "metrics.json", "events.jsonl"):
        (good / name).write_bytes((run / name).read_bytes())
    runs = list_runs(root)
    assert [r.name for r in runs] == ["good"]
    assert list_runs(tmp_path / "absent") == []
    assert is_run_dir(run) and not is_run_dir(root / "notes")
    with pytest.raises(DataError, match="notes: not a run folder"):
        read_run(root / "notes")


def test_half_written_event_line_is_left_out(tmp_path, finished_run):
    run, _, _ = finished_run
    path = tmp_path / "events.jsonl"
    text = (run / "events.jsonl").read_text()
    n = len(read_events(run / "events.jsonl"))
    path.write_text(text + '{"event": "StepE')
    assert len(read_events(path)) == n
    assert read_events(tmp_path / "absent.jsonl") == []


def test_an_unfinished_run_is_marked_unfinished(tmp_path, finished_run):
    run, _, _ = finished_run
    part = tmp_path / "part"
    part.mkdir()
    (part / "config.toml").write_bytes((run / "config.toml").read_bytes())
    lines = (run / "events.jsonl").read_text().splitlines()
    (part / "events.jsonl").write_text("\n".join(lines[:2]) + "\n")  # started, one epoch
    info = read_run(part)
    assert info.status == "unfinished"
    row = comparison_row(info)
    assert row.test_acc is None and row.peak_memory_bytes is None
    h = RunHistory.from_run(info)
    assert h.finished is None and math.isnan(h.eta_s)


def test_new_run_dir_never_reuses_a_folder(tmp_path):
    a = new_run_dir(tmp_path, "csnn")
    a.mkdir()
    b = new_run_dir(tmp_path, "csnn")
    assert a != b and a.name.endswith("csnn") and not b.exists()


def test_save_traces_round_trip_without_input_spikes(tmp_path, finished_run):
    run, events, _ = finished_run
    tr = [e for e in events if isinstance(e, Traces)][0]
    assert tr.input_spikes is None  # the direct encoder feeds currents, not spikes
    save_traces(tr, tmp_path / "t.npz")
    back = load_traces(tmp_path / "t.npz")
    assert back.input_spikes is None and back.epoch == 0
    assert load_traces(tmp_path / "absent.npz") is None
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert load_traces(tmp_path / "bad.npz") is None


def test_fsdd_slice_keeps_the_official_split(tmp_path, fsdd_dir):
    from engine.data.specs import open_source

    spec = fsdd_slice(fsdd_dir, tmp_path / "slice", speakers=2, takes=range(3, 8))
    src = open_source(spec)
    assert len(src.items) == 2 * 10 * 5
    splits = [it.split for it in src.items]
    assert splits.count("test") == 2 * 10 * 2  # takes 3 and 4 are test takes
    assert sorted(src.class_names) == [str(d) for d in range(10)]
