"""Data-parallel training (engine.train.distributed) through the real command and torchrun.

- 2 CPU processes (gloo) end one epoch with the weights of 1 process training the same global
  batches (float rounding apart: the gradient is summed in another order);
- a 2-process run killed with SIGKILL after its first epoch checkpoint resumes (``--resume
  --nproc 2``) to exactly the metrics of an uninterrupted 2-process run (no rank of the killed
  job is left to write the folder while the resume runs);
- no rank outlives ``train --nproc 2``: SIGKILL to the command alone ends every process of the
  job within seconds; SIGINT stops the ranks after their batch (status "stopped") and the
  command ends with one line saying how to resume, status 130; a job whose starting program
  (the desktop app) is SIGKILLed ends too.

The data: scikit-learn's bundled 8x8 digits written as MNIST IDX files (no download).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from app.process_tree import alive, snapshot
from engine.bench.data_parallel import write_digits_idx
from engine.train.checkpoint import load_checkpoint
from engine.train.distributed import Group, launch_command, loss_weight, shard

ROOT = Path(__file__).resolve().parents[3]

CONFIG = """
model = "fc_snn"
steps = 4
epochs = {epochs}
batch = 50
lr = 0.005
seed = 3
device = "cpu"
amp = "off"

[model_options]
hidden = 32
batchnorm = false
readout_norm = false
"""


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits_idx(tmp_path_factory.mktemp("digits-idx"))


def _env(cache: Path) -> dict:
    env = dict(os.environ, SNN_EXPLORER_CACHE=str(cache), PYTHONUNBUFFERED="1")
    env["OMP_NUM_THREADS"] = "1"
    env.pop("WORLD_SIZE", None)
    return env


def _train(tmp: Path, digits: Path, out: str, epochs: int, *extra: str, settings: str = ""):
    cfg = tmp / f"config-{epochs}.toml"
    cfg.write_text(settings + CONFIG.format(epochs=epochs))
    cmd = [sys.executable, "-m", "app.cli", "train", "--config", str(cfg)]
    cmd += ["--data", f"mnist:{digits}", "--out", str(tmp / out), "--quiet", *extra]
    return cmd, _env(tmp / "cache")


def _run(cmd, env, timeout=240) -> str:
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_shard_covers_the_batch_and_weights_make_the_global_mean():
    for n in (2, 7, 50):
        parts = [shard(n, Group(r, 3, r)) for r in range(3)]
        rows = [i for p in parts for i in range(n)[p]]
        assert rows == list(range(n))
        w = [loss_weight(p.stop - p.start, n, Group(0, 3, 0)) for p in parts]
        # the mean of the weighted local means is the global mean for any per-row losses
        losses = np.random.default_rng(n).random(n)
        local = [losses[p].mean() if p.stop > p.start else 0.0 for p in parts]
        assert np.isclose(np.mean([a * b for a, b in zip(w, local)]), losses.mean())
    cmd = launch_command(["--data", "x"], 2)
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert cmd[-4:] == ["app.cli", "train", "--data", "x"]


# the recipe's regularisers too: every rank mixes the whole global batch with the same draws
@pytest.mark.parametrize("settings", ["", "mixup = 0.4\nlabel_smoothing = 0.1\n"])
def test_two_processes_equal_one(tmp_path, digits, settings):
    _run(*_train(tmp_path, digits, "one", 1, settings=settings))
    _run(*_train(tmp_path, digits, "two", 1, "--nproc", "2", settings=settings))
    one = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    two = load_checkpoint(tmp_path / "two" / "checkpoint.pt")
    assert one.weights.keys() == two.weights.keys()
    for k, v in one.weights.items():
        torch.testing.assert_close(two.weights[k], v, rtol=1e-4, atol=1e-5)
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    h1, h2 = m1["history"][0], m2["history"][0]
    assert h1["train_loss"] == pytest.approx(h2["train_loss"], rel=1e-4)
    assert h1["train_acc"] == pytest.approx(h2["train_acc"], abs=2 / m1["n_train"])
    assert m1["test"]["accuracy"] > 0.5  # it trained: equal weights are not two untouched inits
    # the same run folder: every file one process writes, two processes write too, only once
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )
    events = (tmp_path / "two" / "events.jsonl").read_text().splitlines()
    assert sum('"run_started"' in e or "RunStarted" in e for e in events) == 1


def _start(cmd, env, **popen) -> subprocess.Popen:
    popen = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) | popen
    return subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, **popen)


def _job_tree(proc, metrics: Path, epochs_done: int, timeout=240):
    """The processes of the job (the command, torchrun's agent, the ranks) once ``metrics``
    shows ``epochs_done`` epochs (the ranks run by then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and json.loads(metrics.read_text())["epochs_done"] >= epochs_done:
            return snapshot(proc.pid)
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"the job did not reach epoch {epochs_done} (exit {proc.wait()})")


def _all_gone(tree, within_s: float) -> list:
    deadline = time.monotonic() + within_s
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = alive(tree)
    for m in left:  # clean up before failing
        os.kill(m.pid, signal.SIGKILL)
    return left


def test_sigkill_to_train_nproc_leaves_no_process_of_the_job(tmp_path, digits):
    proc = _start(*_train(tmp_path, digits, "run", 500, "--nproc", "2"))
    tree = _job_tree(proc, tmp_path / "run" / "metrics.json", 0)
    assert len(tree) >= 3  # the command and its two ranks (at least)
    os.kill(proc.pid, signal.SIGKILL)  # the command alone: ranks sit in sessions of their own
    proc.wait()
    assert _all_gone(tree, within_s=5) == []


# a program that starts the job as the Training tab does (naming itself as the job's owner),
# says the job's pid and waits: SIGKILLed, it can clean nothing up
OWNER = """
import os, subprocess, sys, time
env = dict(os.environ, {env}=str(os.getpid()))
job = subprocess.Popen(sys.argv[1:], env=env, start_new_session=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(job.pid, flush=True)
time.sleep(600)
"""


def test_a_job_ends_when_the_program_that_started_it_is_killed(tmp_path, digits):
    from engine.train.launcher import OWNER_PID_ENV

    cmd, env = _train(tmp_path, digits, "run", 500, "--nproc", "2")
    owner_code = OWNER.format(env=OWNER_PID_ENV)
    owner = _start([sys.executable, "-c", owner_code, *cmd], env, stdout=subprocess.PIPE, text=True)
    job = int(owner.stdout.readline())
    metrics = tmp_path / "run" / "metrics.json"
    deadline = time.monotonic() + 240
    while not (metrics.exists() and json.loads(metrics.read_text())["epochs_done"] >= 0):
        if time.monotonic() > deadline or owner.poll() is not None:
            os.killpg(job, signal.SIGKILL)
            pytest.fail("the job did not start")
        time.sleep(0.05)
    tree = snapshot(job)
    assert len(tree) >= 3  # the command and its two ranks (at least)
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    assert _all_gone(tree, within_s=40) == []  # SIGTERM: the ranks stop, then the command
    assert json.loads(metrics.read_text())["status"] != "finished"


def test_ctrl_c_to_train_nproc_stops_every_rank_with_one_line(tmp_path, digits):
    cmd, env = _train(tmp_path, digits, "run", 500, "--nproc", "2")
    proc = _start(cmd, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tree = _job_tree(proc, tmp_path / "run" / "metrics.json", 1)
    os.kill(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        _all_gone(tree, within_s=0)
        pytest.fail("train --nproc 2 went on after SIGINT")
    assert proc.returncode == 130
    assert err.strip().splitlines() == [
        "snn-explorer train: stopped by SIGINT; resume with: snn-explorer train "
        + " ".join(cmd[cmd.index("train") + 1 : cmd.index("--nproc")])
        + " --resume --nproc 2"
    ]
    assert _all_gone(tree, within_s=5) == []
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["status"] == "stopped" and m["epochs_done"] >= 1  # the ranks stopped, not killed
    assert out.startswith("stopped: ")  # rank 0's summary


def test_killed_two_process_run_resumes_to_the_same_metrics(tmp_path, digits):
    _run(*_train(tmp_path, digits, "whole", 2, "--nproc", "2"))
    proc = _start(*_train(tmp_path, digits, "killed", 2, "--nproc", "2"))
    metrics = tmp_path / "killed" / "metrics.json"  # written (atomically) after checkpoint.pt
    try:
        tree = _job_tree(proc, metrics, 1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the command's group, mid-epoch 2
        proc.wait()
    # the resume below starts from a folder nobody else writes
    assert _all_gone(tree, within_s=5) == []
    m = json.loads(metrics.read_text())
    assert m["status"] == "running" and m["epochs_done"] == 1
    _run(*_train(tmp_path, digits, "killed", 2, "--nproc", "2", "--resume"))
    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert b["status"] == "completed"
    assert b["test"]["accuracy"] == a["test"]["accuracy"]
    for ha, hb in zip(a["history"], b["history"], strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert ha[key] == hb[key], key
    wa = load_checkpoint(tmp_path / "whole" / "best.pt").weights
    wb = load_checkpoint(tmp_path / "killed" / "best.pt").weights
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
