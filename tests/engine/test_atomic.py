"""engine.atomic: a target is either the old file or the whole new one, never half of either."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.atomic import atomic_path, clear_partials, is_partial, write_atomic, write_with

ROOT = Path(__file__).resolve().parents[2]


def test_write_atomic_writes_text_and_bytes_and_leaves_no_temporary(tmp_path):
    write_atomic(tmp_path / "a.txt", "héllo\n")
    write_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


def test_a_failing_writer_leaves_the_target_untouched_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def writer(tmp: Path) -> None:
        tmp.write_text("half of the new")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_with(target, writer)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_an_exception_inside_atomic_path_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.csv"
    target.write_text("a,b\n")
    with pytest.raises(KeyError), atomic_path(target) as tmp, open(tmp, "w") as fh:
        fh.write("c,d\n")
        raise KeyError("stop")
    assert target.read_text() == "a,b\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_clear_partials_removes_only_temporaries(tmp_path):
    (tmp_path / ".checkpoint.pt.4242.part").write_bytes(b"PK half")
    (tmp_path / "checkpoint.pt").write_bytes(b"whole")
    (tmp_path / ".hidden").write_text("keep")
    (tmp_path / "notes.part").write_text("not hidden: not ours")
    assert clear_partials(tmp_path) == [".checkpoint.pt.4242.part"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "checkpoint.pt", "notes.part"]
    assert is_partial(".a.1.part") and not is_partial("a.part") and not is_partial(".a")
    assert clear_partials(tmp_path / "absent") == []


WRITER = """
import sys, time
from engine.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp, open(tmp, "wb") as fh:
    fh.write(b"new" * 1000)
    fh.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def test_a_killed_writer_leaves_the_old_file_and_a_partial_that_clear_partials_removes(tmp_path):
    target = tmp_path / "state.json"
    target.write_text('{"old": true}')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"  # mid-write: the partial is on disk
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    partial = tmp_path / f".state.json.{proc.pid}.part"
    assert partial.is_file() and partial.stat().st_size == 3000
    assert target.read_text() == '{"old": true}'
    assert clear_partials(tmp_path) == [partial.name]
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
