"""The Training tab's "Processes / GPUs" > 1: a torchrun job followed through its run folder.

:class:`ProcessJob` starts ``snn-explorer train --config ... --out RUN --nproc N`` (the command
line :func:`engine.train.distributed.train_command` builds, the one the CLI runs) with
``QProcess`` in a session of its own, and reads the run folder on a timer
(:class:`engine.train.run_tail.RunTail`: ``events.jsonl``, ``steps.csv``, ``traces.npz``). It has
the face of :class:`app.workers.WorkerHandle` (``progress(object)``, ``failed(str)``, ``done()``,
``stop_event``, ``request_stop``, ``is_running``, ``stop_and_wait``), so the panel drives it
like an in-process run and its events reach the same history and views.

Stop sends SIGTERM to every process of the job (torchrun and each rank: torchrun starts each rank
in a session of its own, see :mod:`app.process_tree`), then SIGKILL to what is left after
``TERM_TIMEOUT_MS``. The job ends with the app too, even a SIGKILLed one (``OWNER_PID_ENV``,
:func:`engine.train.launcher.owner_gone`). Only rank 0 writes the run folder; the epoch checkpoints stay, so Resume
continues a stopped job. A job that exits non-zero reports one line: the error its ranks printed.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from app.process_tree import Member, alive, signal_tree, snapshot
from engine.errors import SnnError
from engine.train.config import RunConfig, save_config
from engine.train.distributed import train_command
from engine.train.launcher import OWNER_PID_ENV
from engine.train.run_tail import RunTail

log = logging.getLogger(__name__)

# set by torchrun for its workers; a job started from inside one must not inherit them
_TORCHRUN_ENV = (
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
)


def job_error(stderr_lines, code: int, nproc: int) -> str:
    """One line for a job that exited with ``code``: the error a rank printed
    (``snn-explorer train: error: ...``), else the last exception line, else the last line."""
    lines = [s.strip() for s in stderr_lines if s.strip()]
    head = f"training in {nproc} processes failed (exit code {code})"
    for line in reversed(lines):
        if ": error: " in line and line.startswith("snn-explorer"):
            return line.split(": error: ", 1)[1]
    for line in reversed(lines):
        name = line.split(":", 1)[0]
        if (
            name.endswith(("Error", "Exception"))
            and " " not in name
            and "ChildFailedError" not in name
            and "SignalException" not in name
        ):
            return f"{head}: {line}"
    rest = [s for s in lines if s.strip("=-") and not s.startswith(("time", "host", "error_file"))]
    return f"{head}: {rest[-1]}" if rest else head


class StopFlag:
    """The ``stop_event`` of a process job: set once Stop was asked (the panel reads it)."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class ProcessJob(QObject):
    """A training run in ``nproc`` processes, followed through ``run_dir``.

    Signals
    -------
    progress(object)
        Each training event read from the run folder, in the loop's order.
    failed(str)
        The job could not start, or exited non-zero without being asked to stop (one line).
    done()
        The job ended, whichever way (after its last events were read).
    """

    progress = Signal(object)
    failed = Signal(str)
    done = Signal()

    POLL_MS = 250  # run-folder reads; the panel's EventBuffer redraws at its own rate
    TERM_TIMEOUT_MS = 5000  # SIGTERM, then SIGKILL to whatever still runs
    TREE_EVERY = 4  # polls between two snapshots of the process tree

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: str | Path,
        nproc: int,
        *,
        resume: bool = False,
        tensorboard: bool = False,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.cfg, self.run_dir, self.nproc = cfg, str(run_dir), int(nproc)
        self.resume, self.tensorboard = resume, tensorboard
        self.stop_event = StopFlag()
        self.process = QProcess(self)
        self.tail = RunTail(self.run_dir, resume=resume)
        self.stderr: deque[str] = deque(maxlen=200)
        self.tree: list[Member] = []
        self.exit_code: int | None = None
        self.command: list[str] = []  # what was started
        self._running = False
        self._polls = 0
        self._partial = b""
        self._folder = ""  # the temporary folder of the launch config
        self._timer = QTimer(self)
        self._timer.setInterval(self.POLL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._on_kill_timer_timeout)
        self.process.readyReadStandardError.connect(self._on_process_stderr)
        self.process.finished.connect(self._on_process_finished)
        self.process.errorOccurred.connect(self._on_process_error)

    # ----- the WorkerHandle face
    def start(self) -> None:
        """Write the launch config and start the job (``failed`` + ``done`` if it cannot)."""
        self._running = True
        try:
            self._folder = tempfile.mkdtemp(prefix="snn-explorer-job-")
            config = Path(self._folder) / "config.toml"
            save_config(self.cfg, config)
            self.command = argv = train_command(
                config, self.run_dir, self.nproc, resume=self.resume, tensorboard=self.tensorboard
            )
        except (OSError, SnnError) as exc:
            message = str(exc) if isinstance(exc, SnnError) else f"{exc.filename}: {exc.strerror}"
            QTimer.singleShot(0, lambda: self._end(message))
            return
        env = QProcessEnvironment.systemEnvironment()
        for name in _TORCHRUN_ENV:
            env.remove(name)
        env.insert("PYTHONUNBUFFERED", "1")  # the ranks' errors arrive as they are printed
        env.insert(OWNER_PID_ENV, str(os.getpid()))  # the job ends if this app is killed
        self.process.setProcessEnvironment(env)
        params = QProcess.UnixProcessParameters()
        params.flags = QProcess.UnixProcessFlag.CreateNewSession
        self.process.setUnixProcessParameters(params)
        self.process.setStandardOutputFile(QProcess.nullDevice())  # the summary: in the folder
        log.info("starting %s", " ".join(argv))
        self.process.start(argv[0], argv[1:])
        self._timer.start()

    def is_running(self) -> bool:
        return self._running

    def request_stop(self) -> None:
        """SIGTERM to every process of the job; SIGKILL after ``TERM_TIMEOUT_MS``."""
        if not self._running or self.stop_event.is_set():
            return
        self.stop_event.set()
        if self.process.state() == QProcess.ProcessState.NotRunning:
            return
        self.tree = self._snapshot()
        signal_tree(self.tree, signal.SIGTERM)
        self._kill_timer.start(self.TERM_TIMEOUT_MS)

    def stop_and_wait(self, timeout_ms: int = 30000) -> bool:
        """Stop the job and block until it ended (the window is closing). True if in time."""
        deadline = time.monotonic() + timeout_ms / 1000
        self.request_stop()
        if self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.waitForFinished(min(self.TERM_TIMEOUT_MS, timeout_ms))
        if self.process.state() != QProcess.ProcessState.NotRunning:
            self._on_kill_timer_timeout()
            left = max(0, int((deadline - time.monotonic()) * 1000))
            self.process.waitForFinished(left)
        if self._running and self.process.state() == QProcess.ProcessState.NotRunning:
            self._end(None)  # ``finished`` may still be queued
        return not self._running

    # ----- handlers
    def _snapshot(self) -> list[Member]:
        pid = self.process.processId()
        if not pid:
            return list(self.tree)
        known = {m.pid: m for m in self.tree}
        known.update({m.pid: m for m in snapshot(pid)})  # ranks seen before stay on the list
        return list(known.values())

    def _on_timer_timeout(self) -> None:
        self._polls += 1
        if self._polls % self.TREE_EVERY == 1 and not self.stop_event.is_set():
            self.tree = self._snapshot()
        self._read_folder()

    def _read_folder(self) -> None:
        for ev in self.tail.poll():
            self.progress.emit(ev)

    def _on_process_stderr(self) -> None:
        data = self._partial + bytes(self.process.readAllStandardError().data())
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").rstrip()
            self.stderr.append(text)
            log.debug("job: %s", text)

    def _on_kill_timer_timeout(self) -> None:
        left = alive(self.tree)
        if left:
            log.warning("%d processes of the job ignored SIGTERM; killing them", len(left))
            signal_tree(left, signal.SIGKILL)

    def _on_process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._end(f"{self.process.program()}: could not start ({self.process.errorString()})")

    def _on_process_finished(self, code: int, status) -> None:
        if self._partial:
            self.stderr.append(self._partial.decode("utf-8", "replace").rstrip())
            self._partial = b""
        self.exit_code = code if status == QProcess.ExitStatus.NormalExit else -1
        message = None
        if not self.stop_event.is_set() and self.exit_code != 0:
            message = job_error(self.stderr, self.exit_code, self.nproc)
        self._end(message)

    def _end(self, message: str | None) -> None:
        if not self._running:
            return
        self._timer.stop()
        self._kill_timer.stop()
        # torchrun waits for its ranks; one that outlived it (torchrun killed) goes now
        orphans = alive(self.tree)
        if orphans:
            signal_tree(orphans, signal.SIGKILL)
        self._read_folder()  # the last events the job wrote
        if self._folder:
            shutil.rmtree(self._folder, ignore_errors=True)
        self._running = False
        if message:
            self.failed.emit(message)
        self.done.emit()


def start_process_job(
    cfg: RunConfig,
    run_dir: str | Path,
    nproc: int,
    *,
    resume: bool = False,
    tensorboard: bool = False,
    parent: QObject | None = None,
    on_progress=None,
    on_failed=None,
    on_done=None,
) -> ProcessJob:
    """Start a :class:`ProcessJob` with its callbacks connected (as ``app.workers.start_worker``)."""
    job = ProcessJob(cfg, run_dir, nproc, resume=resume, tensorboard=tensorboard, parent=parent)
    for sig, callback in (
        (job.progress, on_progress),
        (job.failed, on_failed),
        (job.done, on_done),
    ):
        if callback is not None:
            sig.connect(callback)
    job.start()
    return job
