"""All threading lives here: an engine generator driven by a QObject worker on a QThread.

The engine's long jobs (training, feature extraction, downloads) are plain generators that yield
progress events (frozen dataclasses) and return a result; they receive a ``threading.Event`` and
stop soon after it is set. ``start_worker`` runs one on its own QThread and delivers its events
to the GUI thread through queued signals; the worker never touches a widget.

``EventBuffer`` collects those events and hands them to a redraw callback from a QTimer (30 Hz
by default) so plots redraw at a steady rate however fast events arrive; no ``processEvents()``.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Generator

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from engine.errors import SnnError

log = logging.getLogger(__name__)

JobFactory = Callable[[threading.Event], Generator]


class GeneratorWorker(QObject):
    """Runs ``factory(stop_event)`` to exhaustion on whatever thread it lives on.

    Signals
    -------
    progress(object)
        Each event the generator yields.
    finished(object)
        The generator's return value (``None`` if it returned nothing or was stopped).
    failed(str)
        A one-line message; the traceback goes to the log, not to the user.
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, factory: JobFactory, stop_event: threading.Event, background: bool = False):
        super().__init__()
        self._factory = factory
        self._stop = stop_event
        self._background = background

    @Slot()
    def run(self) -> None:
        if self._background:
            lower_this_thread()
        try:
            gen = self._factory(self._stop)
            result = None
            while True:
                try:
                    event = next(gen)
                except StopIteration as done:
                    result = done.value
                    break
                self.progress.emit(event)
        except SnnError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug or an unexpected library error: log it, show one line
            log.error("worker failed:\n%s", traceback.format_exc())
            self.failed.emit(f"{type(exc).__name__}: {exc}".splitlines()[0])
        else:
            self.finished.emit(result)


#: nice value of a background job's thread (and of the compute threads it starts)
BACKGROUND_NICE = 10


def lower_this_thread(nice: int = BACKGROUND_NICE) -> bool:
    """Give the calling thread a lower scheduling priority (Linux: a thread is a task).

    Long computations (training, feature extraction) share the cores with the GUI thread; at a
    lower priority they still get every idle cycle, but the GUI thread runs first when it has
    something to draw. The OpenMP and Numba threads a thread starts inherit its priority.
    Returns False where it cannot be done.
    """
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return False  # elsewhere a thread id is not a task id that setpriority takes
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))
    except (AttributeError, OSError):
        return False
    return True


class WorkerHandle(QObject):
    """A running job: its thread, its worker and its stop event.

    Signals mirror the worker's, delivered on the GUI thread; ``done`` fires after the thread
    has quit, whichever way the job ended.
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(
        self, factory: JobFactory, parent: QObject | None = None, background: bool = False
    ):
        super().__init__(parent)
        self.stop_event = threading.Event()
        self.thread = QThread()
        self.thread.setObjectName("snn-explorer-worker")
        self.worker = GeneratorWorker(factory, self.stop_event, background)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.progress.connect(self.progress)
        self.worker.finished.connect(self.finished)
        self.worker.failed.connect(self.failed)
        # Direct: quit from the worker thread itself, so a GUI thread blocked in wait() is freed
        direct = Qt.ConnectionType.DirectConnection
        self.worker.finished.connect(self.thread.quit, direct)
        self.worker.failed.connect(self.thread.quit, direct)
        self.thread.finished.connect(self._on_thread_finished)
        self._running = False

    def start(self) -> None:
        self._running = True
        self.thread.start()

    def is_running(self) -> bool:
        return self._running

    def request_stop(self) -> None:
        """Ask the job to stop; it ends on its own shortly after (the engine checks the event)."""
        self.stop_event.set()

    def stop_and_wait(self, timeout_ms: int = 30000) -> bool:
        """Stop the job and block until its thread has ended. True if it ended in time."""
        self.stop_event.set()
        if not self.thread.isRunning():
            self._on_thread_finished()  # ended, its queued ``finished`` maybe not yet delivered
            return True
        self.thread.quit()  # the loop ends as soon as the job's run() returns
        ok = self.thread.wait(timeout_ms)
        if ok:
            self._on_thread_finished()
        return ok

    @Slot()
    def _on_thread_finished(self) -> None:
        if self._running:
            self._running = False
            self.done.emit()
            # release the job's closure and detach from the parent panel, so finished handles
            # do not pile up (the panel keeps a reference to its current one if it needs it)
            self.worker._factory = None
            QTimer.singleShot(0, lambda h=self: h.setParent(None))


def start_worker(
    factory: JobFactory,
    parent: QObject | None = None,
    on_progress: Callable[[object], None] | None = None,
    on_finished: Callable[[object], None] | None = None,
    on_failed: Callable[[str], None] | None = None,
    background: bool = False,
) -> WorkerHandle:
    """Start ``factory(stop_event)`` on a new QThread and return its handle.

    ``background``: a long computation (training, feature extraction) that runs at a lower
    priority than the GUI (see :func:`lower_this_thread`).
    """
    handle = WorkerHandle(factory, parent, background)
    if on_progress:
        handle.progress.connect(on_progress)
    if on_finished:
        handle.finished.connect(on_finished)
    if on_failed:
        handle.failed.connect(on_failed)
    handle.start()
    return handle


class PanelJobs(QObject):
    """A panel's background jobs, held by name: the one way a panel starts, drops and stops them.

    Starting a job under a name supersedes the job of that name still running: the older one is
    asked to stop and its ``progress``/``finished``/``failed``/``done`` callbacks are dropped, so a
    stale result never reaches the panel (the ndv way: the newest request wins). Jobs of other
    names run on. :meth:`stop_all` (the panel's ``shutdown``) stops every job, superseded ones
    included, and waits for all of them within ONE timeout.
    """

    #: how long :meth:`stop_all` waits for all of a panel's jobs together
    STOP_TIMEOUT_MS = 30000

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._current: dict[str, WorkerHandle] = {}
        self._running: list[WorkerHandle] = []  # current and superseded, until their thread ends

    def start(
        self,
        name: str,
        factory: JobFactory,
        *,
        on_progress: Callable[[object], None] | None = None,
        on_finished: Callable[[object], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        on_done: Callable[[], None] | None = None,
        background: bool = False,
    ) -> WorkerHandle:
        """Run ``factory(stop_event)`` as the job ``name`` (see :func:`start_worker`).

        The callbacks run on the GUI thread, and only while this job is still the newest of its
        name; ``on_done`` runs after its thread has ended, whichever way it ended.
        """
        old = self._current.get(name)
        if old is not None:
            old.request_stop()
        handle = WorkerHandle(factory, self.parent(), background)
        self._current[name] = handle
        self._running.append(handle)

        def newest(callback):
            if callback is None:
                return None
            return lambda *args: callback(*args) if self._current.get(name) is handle else None

        for signal, callback in (
            (handle.progress, on_progress),
            (handle.finished, on_finished),
            (handle.failed, on_failed),
        ):
            if callback is not None:
                signal.connect(newest(callback))
        handle.done.connect(lambda: self._on_handle_done(name, handle, on_done))
        handle.start()
        return handle

    def current(self, name: str) -> WorkerHandle | None:
        """The running job ``name`` (None when none runs)."""
        handle = self._current.get(name)
        return handle if handle is not None and handle.is_running() else None

    def busy(self, *names: str) -> bool:
        """True while a job of one of ``names`` (any job, when none given) runs."""
        if not names:
            return any(h.is_running() for h in self._running)
        return any(self.current(n) is not None for n in names)

    def stop(self, name: str) -> None:
        """Ask the job ``name`` to stop (it ends shortly after; its result still arrives)."""
        handle = self.current(name)
        if handle is not None:
            handle.request_stop()

    def drop(self, name: str) -> None:
        """Stop the job ``name`` and drop its result (a request answered another way wins)."""
        handle = self._current.pop(name, None)
        if handle is not None:
            handle.request_stop()

    def stop_all(self, timeout_ms: int | None = None) -> bool:
        """Stop every job and wait until all have ended, within one ``timeout_ms`` in all.

        True when every thread ended in time. Used by the panel's ``shutdown``.
        """
        deadline = (
            time.monotonic() + (self.STOP_TIMEOUT_MS if timeout_ms is None else timeout_ms) / 1000
        )
        handles = list(self._running)
        for h in handles:
            h.request_stop()
            # the worker's own quit request reaches the thread through this (blocked) GUI
            # thread's event loop; asking directly lets the wait end as soon as the job does
            h.thread.quit()
        ok = True
        for h in handles:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            ok = h.stop_and_wait(left) and ok
        return ok

    def _on_handle_done(self, name: str, handle: WorkerHandle, on_done) -> None:
        if handle in self._running:
            self._running.remove(handle)
        if self._current.get(name) is handle:
            del self._current[name]
            if on_done is not None:
                on_done()


class EventBuffer(QObject):
    """Buffers events and hands them, in order, to ``callback(events)`` from a timer.

    Parameters
    ----------
    callback : callable
        Called on the GUI thread with the list of events gathered since the last tick; not
        called when there are none.
    interval_ms : int
        Redraw period (33 ms = 30 Hz).
    """

    def __init__(self, callback: Callable[[list], None], interval_ms: int = 33, parent=None):
        super().__init__(parent)
        self._callback = callback
        self._events: list = []
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self._timer.start()

    @Slot(object)
    def push(self, event: object) -> None:
        self._events.append(event)

    def pending(self) -> int:
        return len(self._events)

    @Slot()
    def flush(self) -> None:
        if self._events:
            events, self._events = self._events, []
            self._callback(events)

    def stop(self) -> None:
        self._timer.stop()
        self.flush()
