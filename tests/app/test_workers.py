"""app.workers: a generator job on a QThread, stop, failures, buffered redraw."""

import time

from app.workers import EventBuffer, PanelJobs, start_worker
from engine.errors import DataError


def _counting_job(n, delay=0.0):
    def job(stop):
        for i in range(n):
            if stop.is_set():
                return "stopped"
            time.sleep(delay)
            yield i
        return "done"

    return job


def test_worker_delivers_events_and_result(qtbot):
    seen = []
    handle = start_worker(_counting_job(5), on_progress=seen.append)
    with qtbot.waitSignal(handle.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == ["done"]
    qtbot.waitUntil(lambda: not handle.thread.isRunning(), timeout=2000)
    assert seen == [0, 1, 2, 3, 4]


def test_stop_and_wait_returns_promptly(qtbot):
    handle = start_worker(_counting_job(10_000, delay=0.01))
    qtbot.wait(100)
    t0 = time.monotonic()
    assert handle.stop_and_wait(5000)
    assert time.monotonic() - t0 < 2.0
    assert not handle.thread.isRunning()


def test_user_error_becomes_one_line_failure(qtbot):
    def job(stop):
        yield 1
        raise DataError("x.wav: not audio")

    handle = start_worker(job)
    with qtbot.waitSignal(handle.failed, timeout=5000) as blocker:
        pass
    assert blocker.args == ["x.wav: not audio"]
    qtbot.waitUntil(lambda: not handle.thread.isRunning(), timeout=2000)


def test_unexpected_error_is_one_line(qtbot):
    def job(stop):
        raise ValueError("bad\nsecond line")
        yield  # pragma: no cover

    handle = start_worker(job)
    with qtbot.waitSignal(handle.failed, timeout=5000) as blocker:
        pass
    assert blocker.args == ["ValueError: bad"]
    qtbot.waitUntil(lambda: not handle.thread.isRunning(), timeout=2000)


def test_event_buffer_batches_in_order(qtbot):
    batches = []
    buf = EventBuffer(batches.append, interval_ms=20)
    for i in range(7):
        buf.push(i)
    qtbot.waitUntil(lambda: len(batches) > 0, timeout=2000)
    assert [e for b in batches for e in b] == list(range(7))
    buf.stop()


def test_background_jobs_run_below_the_gui_thread(qtbot):
    """Training and feature jobs run at a lower priority (Linux nice) than the GUI thread, so a
    busy CPU still serves the GUI first; ordinary jobs keep the GUI's priority."""
    import os
    import threading

    def job(stop):
        tid = threading.get_native_id()
        yield os.getpriority(os.PRIO_PROCESS, tid)
        x = sum(range(1000))  # the job itself runs normally
        return x

    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen, handles = {}, []  # keep each handle until its thread has ended (Qt aborts otherwise)
    for background in (False, True):
        got = []
        handle = start_worker(job, on_progress=got.append, background=background)
        handles.append(handle)
        with qtbot.waitSignal(handle.finished, timeout=5000) as blocker:
            pass
        assert blocker.args == [499500]
        qtbot.waitUntil(lambda h=handle: not h.thread.isRunning(), timeout=5000)
        seen[background] = got[0]
    assert seen[False] == gui
    assert seen[True] == max(gui, 10)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == gui  # GUI untouched


# ----- PanelJobs
def _slow_result(value, delay):
    """A job that ignores its stop flag for ``delay`` s, then returns ``value``."""

    def job(stop):
        time.sleep(delay)
        return value
        yield  # pragma: no cover

    return job


def test_panel_jobs_drop_a_superseded_result(qtbot):
    jobs = PanelJobs()
    got, done = [], []
    first = jobs.start("open", _slow_result("old", 0.4), on_finished=got.append)
    second = jobs.start("open", _slow_result("new", 0.05), on_finished=got.append)
    other = jobs.start("examples", _slow_result("ex", 0.05), on_done=lambda: done.append("ex"))
    assert first.stop_event.is_set() and not second.stop_event.is_set()
    assert not other.stop_event.is_set()  # another name runs on
    qtbot.waitUntil(lambda: not jobs.busy(), timeout=5000)
    qtbot.wait(50)
    assert got == ["new"]  # the older job finished later, and its result was dropped
    assert done == ["ex"]
    assert jobs.current("open") is None and not jobs.busy("open", "examples")


def test_panel_jobs_stop_all_waits_once_for_every_job(qtbot):
    jobs = PanelJobs()
    for name in ("a", "b", "c", "a"):  # the superseded "a" is stopped too
        jobs.start(name, _counting_job(10_000, delay=0.01))
    assert jobs.busy("a", "b", "c")
    t0 = time.monotonic()
    assert jobs.stop_all(5000)
    assert time.monotonic() - t0 < 2.0
    assert not jobs.busy()


def test_panel_jobs_stop_all_timeout_is_shared_not_per_job(qtbot):
    jobs = PanelJobs()
    handles = [jobs.start(n, _slow_result(n, 1.0)) for n in ("a", "b", "c")]
    t0 = time.monotonic()
    assert not jobs.stop_all(300)  # three jobs that ignore the flag for 1 s: one 0.3 s wait
    assert time.monotonic() - t0 < 0.8
    for h in handles:  # let them end before the handles go (a collected running QThread aborts)
        assert h.stop_and_wait(5000)
