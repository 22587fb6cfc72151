"""app.process_tree on real processes: a parent whose child runs in a session of its own (as
torchrun starts its ranks), both ignoring SIGTERM: the snapshot finds both, SIGTERM leaves them,
SIGKILL ends them, and a pid that is not the snapshot's process is never signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from app.process_tree import Member, alive, signal_tree, snapshot

# the parent starts a child in a new session, prints its pid, and both ignore SIGTERM
PARENT = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"],
    start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def _wait_gone(members, timeout=10.0):
    deadline = time.monotonic() + timeout
    while alive(members) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(members)


def test_a_tree_in_several_sessions_is_found_and_killed():
    proc = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        child = int(proc.stdout.readline())
        tree = snapshot(proc.pid)
        assert [m.pid for m in tree] == [proc.pid, child]
        assert all(m.start > 0 for m in tree)
        assert signal_tree(tree, signal.SIGTERM) == 2
        time.sleep(0.3)
        assert alive(tree) == tree  # SIGTERM ignored
        assert signal_tree(tree, signal.SIGKILL) == 2
        proc.wait(10)  # reap the parent (a zombie counts as ended anyway)
        assert _wait_gone(tree) == []
        assert signal_tree(tree, signal.SIGKILL) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_reused_pid_is_not_the_same_process():
    me = snapshot(os.getpid())[0]
    assert alive([me]) == [me]
    assert alive([Member(me.pid, me.start + 1)]) == []  # same pid, another start time
