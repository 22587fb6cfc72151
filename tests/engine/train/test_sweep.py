"""Sweeps on scikit-learn's bundled 8x8 digits: the space file, the study, pruning, stop and resume,
and two worker processes sharing one SQLite study. Tiny spiking MLP, one or two epochs a trial."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from sweepkit import ROOT, child_env, write_files

from engine.errors import ConfigError
from engine.train.config import RunConfig, load_config
from engine.train.recorded_run import digits_feature_set
from engine.train.run_folder import read_run
from engine.train.sweep import sweep, trial_dir
from engine.train.sweep_events import SweepFinished, SweepStarted, TrialEpoch, TrialStarted
from engine.train.sweep_space import apply_params, load_space, parse_space
from engine.train.sweep_study import SweepSpec, open_study, read_spec, read_sweep

BASE = RunConfig(
    model="fc_snn", steps=4, epochs=1, batch=64, limit=400, model_options={"hidden": 32}
)
SPACE = {"lr": {"low": 1e-4, "high": 3e-2, "log": True}, "beta": {"low": 0.5, "high": 0.95}}


@pytest.fixture(scope="module")
def digits():
    return digits_feature_set(size=8)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread, as each sweep worker process uses (the machine is shared)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _run(gen, on_event=None) -> list:
    events = []
    for ev in gen:
        events.append(ev)
        if on_event:
            on_event(ev)
    return events


def _spec(tmp_path, epochs=1, space=SPACE) -> SweepSpec:
    base = BASE.replace(epochs=epochs)
    return SweepSpec(base, parse_space(space, base), str(tmp_path / "sweep"))


# ----- the space file
@pytest.mark.parametrize(
    "text, message",
    [
        ("betta = {low = 0.5, high = 0.9}", "space.toml: betta: unknown key"),
        ("features.n_mfcc = {low = 30, high = 13}", "features.n_mfcc: the range [30, 13] is empty"),
        ("lr = {choices = []}", "space.toml: lr: choices is empty"),
        ("features.n_mfccs = {low = 10, high = 20}", "features.n_mfccs: unknown key; [features]"),
        ("model_options.hiddn = {low = 8, high = 64}", "model_options.hiddn: unknown key"),
        ("steps = {low = 2.5, high = 6}", "steps: steps is a whole number"),
        ("beta = {low = 0.5, high = 1.5}", "space.toml: beta = 1.5: beta: 1.5 must lie in [0, 1]"),
        ("lr = {low = 0.0, high = 1.0, log = true}", "lr: log = true needs low > 0"),
        ('data = {choices = ["fsdd:x"]}', "data: data is fixed for the whole sweep"),
        ("lr = 0.01", "lr: give a range"),
        ("lr = {low = 0.001, hi = 0.1}", "lr: unknown range option 'hi'"),
        ("", "no parameters to search"),
    ],
)
def test_a_bad_space_is_one_line_naming_file_and_key(tmp_path, text, message):
    path = tmp_path / "space.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_space(path, BASE)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_a_space_parses_to_optuna_distributions_and_applies_to_the_config(tmp_path):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    path = tmp_path / "space.toml"
    path.write_text(
        "lr = {low = 1e-4, high = 1e-2, log = true}\nsteps = {low = 10, high = 40, step = 5}\n"
        "model_options.hidden = {choices = [16, 32]}\n[features]\nn_mfcc = {low = 13, high = 30}\n"
    )
    space = load_space(path, BASE)
    assert [p.key for p in space] == ["lr", "steps", "model_options.hidden", "features.n_mfcc"]
    dists = [p.distribution() for p in space]
    assert isinstance(dists[0], FloatDistribution) and dists[0].log
    assert isinstance(dists[1], IntDistribution) and dists[1].step == 5
    assert isinstance(dists[2], CategoricalDistribution)
    assert isinstance(dists[3], IntDistribution)
    cfg = apply_params(BASE, {"lr": 0.001, "model_options.hidden": 16, "features.n_mfcc": 13})
    assert cfg.lr == 0.001 and cfg.model_options == {"hidden": 16}
    assert cfg.features == {"n_mfcc": 13} and cfg.steps == BASE.steps


# ----- in one process
def test_a_sweep_runs_n_trials_as_run_folders_and_writes_the_best_config(tmp_path, digits):
    spec = _spec(tmp_path)
    events = _run(sweep(spec, 3, data=digits))
    done = events[-1]
    assert isinstance(done, SweepFinished) and done.status == "completed"
    s = done.summary
    assert s.n_counted == 3 and [r.number for r in s.rows] == [0, 1, 2]
    assert [type(e).__name__ for e in events[:4]] == [
        "SweepStarted",
        "TrialStarted",
        "TrialEpoch",
        "TrialFinished",
    ]
    for r in s.rows:
        run = read_run(r.run_dir)  # a normal run folder the Training tab opens
        assert run.status == "completed" and len(run.history) == 1
        assert run.config["lr"] == pytest.approx(r.params["lr"])
        assert r.value == pytest.approx(run.history[0]["val_acc"])
    best = max(s.rows, key=lambda r: r.value)
    assert s.best_number == best.number
    cfg = load_config(tmp_path / "sweep" / "best.toml")  # a full config `train --config` takes
    assert cfg == apply_params(spec.base, best.params)
    assert set(s.importances) == {"lr", "beta"}
    assert sum(s.importances.values()) == pytest.approx(1.0)

    # the same sweep again: nothing left to do; asking for 4 runs exactly one more
    again = _run(sweep(spec, 3, data=digits))
    assert again[0].done == 3 and not any(isinstance(e, TrialStarted) for e in again)
    more = _run(sweep(spec, 4, data=digits))
    assert [e.number for e in more if isinstance(e, TrialStarted)] == [3]
    assert read_sweep(spec.out).n_counted == 4


def test_too_few_trials_for_importances_is_said_not_raised(tmp_path, digits):
    done = _run(sweep(_spec(tmp_path), 1, data=digits))[-1]
    assert done.summary.importances == {} and "at least 2" in done.summary.importance_note


def test_a_poor_trial_is_pruned_after_its_first_epoch(tmp_path, digits):
    spec = _spec(tmp_path, epochs=2)
    study, _ = open_study(spec)
    for lr in (0.03, 0.03, 1e-4):  # two good trials set the median; the third learns nothing
        study.enqueue_trial({"lr": lr, "beta": 0.8})
    events = _run(sweep(spec, 3, data=digits))
    rows = events[-1].summary.rows
    assert [r.state for r in rows] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert [e.epoch for e in events if isinstance(e, TrialEpoch) and e.number == 2] == [1]
    pruned = read_run(rows[2].run_dir)
    assert pruned.status == "stopped" and pruned.checkpoint  # stopped cleanly, resumable


def test_stop_mid_trial_then_rerun_resumes_that_trial_from_its_checkpoint(tmp_path, digits):
    spec = _spec(tmp_path, epochs=2)
    stop = threading.Event()
    first = _run(
        sweep(spec, 2, stop=stop, data=digits),
        lambda ev: isinstance(ev, TrialEpoch) and stop.set(),
    )
    assert first[-1].status == "stopped"
    assert [r.state for r in first[-1].summary.rows] == ["FAIL", "WAITING"]
    second = _run(sweep(spec, 2, data=digits))
    started = [e for e in second if isinstance(e, TrialStarted)]
    assert started[0].number == 1 and started[0].resumed_from == 0
    assert not trial_dir(spec.out, 0).exists()  # its folder moved on to trial 1
    run = read_run(trial_dir(spec.out, 1))
    assert [h["epoch"] for h in run.history] == [1, 2] and run.status == "completed"
    resumed = [e for e in run.events if e.get("event") == "RunStarted"]
    assert [e["resumed"] for e in resumed] == [False, True]
    assert second[-1].summary.n_counted == 2
    assert isinstance(second[0], SweepStarted) and second[0].done == 0


# ----- two processes, one SQLite study
def test_two_worker_processes_share_one_sqlite_study(tmp_path):
    base_file, space_file = write_files(tmp_path, epochs=1, limit=900)
    base = load_config(base_file)
    spec = SweepSpec(base, load_space(space_file, base), str(tmp_path / "sweep"))
    spec.save()
    cmd = [sys.executable, "-m", "engine.train.sweep", spec.out, "4"]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    study, _ = open_study(spec)
    trials = study.get_trials()
    counted = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 4
    assert len({t.number for t in counted}) == 4
    assert len({t.user_attrs["run_dir"] for t in counted}) == 4
    pids = {t.user_attrs["worker"].split(":")[1] for t in counted}
    assert len(pids) == 2  # both processes ran trials of the one study
    extra = [t for t in trials if t not in counted]
    assert all(t.user_attrs.get("surplus") for t in extra)  # at most a number given back


def test_a_rerun_without_storage_continues_in_the_sweeps_own_storage(tmp_path):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    first = _spec(tmp_path)
    first = SweepSpec(first.base, first.space, first.out, url).save(5)
    again = SweepSpec(first.base, first.space, first.out).save(6)
    assert again.storage == url and again.url == url
    assert read_spec(first.out).storage == url
    from engine.train.sweep_study import asked_trials

    assert asked_trials(first.out) == 6


def test_a_trial_whose_heartbeat_stopped_on_another_machine_is_queued_again(
    tmp_path, digits, monkeypatch
):
    import time

    from engine.train import sweep_study
    from engine.train.sweep import suggest

    monkeypatch.setattr(sweep_study, "HEARTBEAT_S", 1)
    monkeypatch.setattr(sweep_study, "GRACE_S", 2)
    spec = _spec(tmp_path).save(1)
    study, storage = open_study(spec)
    trial = study.ask()
    params = suggest(trial, spec.space)
    trial.set_user_attr("worker", "another-machine:12345:0")  # not a process of this machine
    storage.record_heartbeat(trial._trial_id)
    # its heartbeat is now older than the grace period (SQLite's now() has whole seconds, so
    # wait past the next second boundary too)
    time.sleep(3.5)
    events = _run(sweep(spec, 1, data=digits))
    assert events[0].recovered == (0,)
    started = [e for e in events if isinstance(e, TrialStarted)]
    assert [e.number for e in started] == [1] and started[0].params == params
    assert [r.state for r in events[-1].summary.rows] == ["FAIL", "COMPLETE"]
