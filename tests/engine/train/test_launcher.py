"""engine.train.launcher: a rank dies with its launcher, and one whose launcher is already gone
exits at once. Real processes (a launcher and its rank, as torchrun's agent and a worker), no
torch: the guard is plain Linux (prctl PR_SET_PDEATHSIG)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.train.launcher import LAUNCHER_GONE_EXIT, LAUNCHER_PID_ENV

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")

# a rank: the guard, then report the death signal the kernel holds for it, then work forever
RANK = """
import ctypes, sys, time
from engine.train.launcher import guard_rank
guard_rank()
sig = ctypes.c_int(0)
ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG
print(sig.value, flush=True)
time.sleep(120)
"""

# a launcher: starts the rank with its own pid in the environment, says the rank's pid, waits
LAUNCHER = f"""
import os, subprocess, sys, time
env = dict(os.environ, {LAUNCHER_PID_ENV}=str(os.getpid()))
rank = subprocess.Popen([sys.executable, "-c", {RANK!r}], env=env, start_new_session=True,
                        stdout=subprocess.PIPE, text=True)
print(rank.pid, rank.stdout.readline().strip(), flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_a_rank_dies_when_its_launcher_is_killed():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    rank, deathsig = map(int, launcher.stdout.readline().split())
    launcher.kill()  # SIGKILL: no handler of the launcher's runs
    launcher.wait()
    deadline = time.monotonic() + 5
    while not _gone(rank) and time.monotonic() < deadline:
        time.sleep(0.02)
    survived = not _gone(rank)
    if survived:
        os.kill(rank, signal.SIGKILL)
    assert deathsig == signal.SIGKILL
    assert not survived, "the rank outlived its launcher"


def test_a_rank_whose_launcher_is_already_gone_exits_at_once():
    # the recorded launcher is not this rank's parent (pytest is): it died before the guard ran
    env = dict(os.environ, PYTHONPATH=str(ROOT), RANK="1", **{LAUNCHER_PID_ENV: "1"})
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", RANK], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == LAUNCHER_GONE_EXIT and done.stdout == ""
    assert done.stderr.strip() == "rank 1: launcher 1 is gone"
    assert time.monotonic() - t0 < 30  # not the rank's two minutes of work
