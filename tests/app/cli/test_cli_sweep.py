"""``snn-explorer sweep`` as a user runs it, on scikit-learn's digits written as an IDX folder:
killed with SIGKILL mid-trial and rerun with the same command; two worker processes; bad files."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from sweepkit import ROOT, child_env, cli, run_cli, write_files

from app.cli import main
from engine.train.config import load_config
from engine.train.run_folder import read_run
from engine.train.sweep_study import SweepSpec, open_study, read_spec


def _states(out) -> dict[int, str]:
    study, _ = open_study(read_spec(out))
    return {t.number: t.state.name for t in study.get_trials()}


def test_killed_mid_trial_then_the_same_command_finishes_exactly_n_trials(tmp_path):
    base, space = write_files(tmp_path, epochs=3, limit=600)
    out = tmp_path / "sweep"
    argv = ["sweep", "--config", str(base), "--space", str(space), "--trials", "3"]
    argv += ["--out", str(out)]
    proc = subprocess.Popen(
        cli(*argv), cwd=ROOT, env=child_env(), stderr=subprocess.PIPE, text=True
    )
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stderr:
        seen.append(line)
        if "trial 1 epoch 2/3" in line:
            # in the middle of trial 1: its epoch-1 checkpoint is written (epoch 2's may not be)
            os.kill(proc.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "".join(seen)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    assert _states(out) == {0: "COMPLETE", 1: "RUNNING"}  # left behind by the killed process

    again = run_cli(*argv)
    assert again.returncode == 0, again.stderr
    assert "trials [1] were left running: queued again" in again.stderr
    assert "trial 2 (resumes trial 1)" in again.stderr, again.stderr
    states = _states(out)
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == 3
    assert states[1] == "FAIL" and [n for n, s in states.items() if s == "FAIL"] == [1]
    resumed = read_run(out / "trial-0002")  # trial 1's run, continued, not run again
    assert [e["resumed"] for e in resumed.events if e.get("event") == "RunStarted"] == [
        False,
        True,
    ]
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert "3 trials complete or pruned" in again.stdout and "best: trial" in again.stdout
    assert load_config(out / "best.toml").model == "fc_snn"  # a config `train --config` reads


def test_two_jobs_share_the_trials(tmp_path, capsys):
    base, space = write_files(tmp_path, epochs=1, limit=600)
    out = tmp_path / "sweep"
    argv = ["sweep", "--config", str(base), "--space", str(space), "--trials", "3"]
    assert main([*argv, "--jobs", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "3 trials complete or pruned" in captured.out, captured.err
    study, _ = open_study(read_spec(out))
    counted = [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 3 and len({t.number for t in counted}) == 3
    for k in (0, 1):
        assert (out / f"worker-{k}.log").is_file()
    for t in counted:
        assert f"trial {t.number} {t.state.name}" in captured.err


@pytest.mark.parametrize(
    "space, message",
    [
        ("lr = {low = 1e-3, high = 1e-2}\nbetta = {low = 0.5, high = 0.9}\n", "betta: unknown key"),
        ("steps = {low = 8, high = 4}\n", "steps: the range [8, 4] is empty"),
        ("lr = {choices = []}\n", "lr: choices is empty"),
    ],
)
def test_a_bad_space_file_is_one_line_and_exit_code_2(tmp_path, capsys, space, message):
    base, space_file = write_files(tmp_path, space=space)
    argv = ["sweep", "--config", str(base), "--space", str(space_file), "--trials", "2"]
    assert main([*argv, "--out", str(tmp_path / "sweep")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(space_file) in err and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "sweep").exists()


def test_another_space_in_the_same_folder_is_refused(tmp_path, capsys):
    base, space = write_files(tmp_path)
    cfg = load_config(base)
    from engine.train.sweep_space import load_space

    SweepSpec(cfg, load_space(space, cfg), str(tmp_path / "sweep")).save()
    other = tmp_path / "other.toml"
    other.write_text("lr = {low = 1e-3, high = 1e-2}\n")
    argv = ["sweep", "--config", str(base), "--space", str(other), "--trials", "2"]
    assert main([*argv, "--out", str(tmp_path / "sweep")]) == 1
    err = capsys.readouterr().err
    assert "sweep.json: this folder holds a sweep with another space" in err
    assert err.count("\n") == 1
