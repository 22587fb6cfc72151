"""The lifetime of a multi-process job: no rank outlives the process that launched it.

``torchrun`` starts each rank in a session of its own, so neither a signal to the launcher's
process group nor the launcher's death reaches the ranks by itself. Two pieces close that gap:

- :func:`run_torchrun` runs torchrun's agent *in this process* (``train --nproc N`` calls it), so
  the ranks are this process's own children and it records its pid in ``LAUNCHER_PID_ENV`` for
  them. SIGINT, SIGTERM and SIGHUP reach torchrun's own handlers here, which send the same signal
  to every rank's session, wait for them (SIGKILL after 30 s) and end with ``SignalException``:
  :func:`run_torchrun` turns that into ``128 + signal``. In process rather than as a child with a
  death signal because the chain then has one link fewer (no torchrun of its own to orphan), the
  ranks' expected parent is a pid known before they start (so their check below is exact), and no
  signal forwarding or ``preexec_fn`` (unsafe with threads) is needed.
- :func:`guard_rank`, first thing in every rank: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` makes Linux
  kill the rank when its parent (the launcher) ends, even by SIGKILL; a launcher that died
  before that call is caught by comparing ``os.getppid()`` with ``LAUNCHER_PID_ENV``.

A program that starts ``train --nproc N`` as a child (the desktop app's Training tab) names
itself in ``OWNER_PID_ENV``: :func:`run_torchrun` then asks for SIGTERM when that parent ends
(even by SIGKILL), which stops the job as a SIGTERM always does, ranks first.

All are no-ops where there is no ``prctl`` (macOS, Windows).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

LAUNCHER_PID_ENV = "SNN_EXPLORER_LAUNCHER_PID"
OWNER_PID_ENV = "SNN_EXPLORER_OWNER_PID"  # set by a program that starts train --nproc
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
LAUNCHER_GONE_EXIT = 128 + signal.SIGKILL  # what the rank would have got from the kernel


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent ends; False where unsupported.

    The kernel watches the parent *thread* that forked this process: start ranks from the main
    thread (torchrun's agent does)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def guard_rank() -> None:
    """Tie this rank's life to its launcher's (call it before any real work in a rank).

    After :func:`die_with_parent`, a parent that is not the launcher named in
    ``LAUNCHER_PID_ENV`` means the launcher already died (this process was handed to init or a
    subreaper): exit at once. Without the variable (a plain ``torchrun`` started by hand) the
    death signal still ties the rank to torchrun's agent."""
    if not die_with_parent():
        return
    expected = os.environ.get(LAUNCHER_PID_ENV, "")
    if expected.isdigit() and os.getppid() != int(expected):
        sys.stderr.write(f"rank {os.environ.get('RANK', '?')}: launcher {expected} is gone\n")
        sys.stderr.flush()
        os._exit(LAUNCHER_GONE_EXIT)


def owner_gone() -> bool:
    """Tie this launcher to the program named in ``OWNER_PID_ENV`` (if any): SIGTERM when it
    ends. True when it has already ended (this process now has another parent)."""
    expected = os.environ.get(OWNER_PID_ENV, "")
    if not expected.isdigit() or not die_with_parent(signal.SIGTERM):
        return False
    return os.getppid() != int(expected)


class _Signalled(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_signalled(signum, _frame):
    raise _Signalled(signum)


def _elastic_loggers() -> list[logging.Logger]:
    return [
        lg
        for name, lg in list(logging.root.manager.loggerDict.items())
        if name.startswith("torch.distributed.elastic") and isinstance(lg, logging.Logger)
    ]


def run_torchrun(args: list[str]) -> int:
    """``torchrun ARGS`` in this process; the exit status: 0, the first failed rank's status,
    or ``128 + signal`` when SIGINT, SIGTERM or SIGHUP stopped the job (every rank has ended
    by then). Call it from the main thread (signal handlers)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun_main

    if owner_gone():  # the program that started this job has already ended
        return 128 + signal.SIGTERM
    before = os.environ.get(LAUNCHER_PID_ENV)
    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())  # the ranks inherit torchrun's environment
    # until torchrun's agent installs its own handlers (when the ranks start), a signal ends
    # the launch the same way; after the job torchrun leaves its handlers: restore ours
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, _raise_signalled) for s in handled}
    # torchrun's "death signal, shutting down workers" chatter, unless --verbose (its loggers
    # each carry their own level: raise each one's)
    quiet = [] if log.isEnabledFor(logging.INFO) else _elastic_loggers()
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    # the ranks run one thread each (engine.train.distributed.init); said here, torchrun does
    # not print its four-line banner about it
    omp = os.environ.get("OMP_NUM_THREADS")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        torchrun_main(list(args))
        return 0
    except (SignalException, _Signalled) as exc:
        signum = int(exc.sigval if isinstance(exc, SignalException) else exc.signum)
        return 128 + signum
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except ChildFailedError as exc:
        _rank, failure = exc.get_first_failure()
        code = failure.exitcode
        return code if 0 < code < 256 else 1
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
        for s, handler in previous.items():
            signal.signal(s, handler)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        if before is None:
            os.environ.pop(LAUNCHER_PID_ENV, None)
        else:
            os.environ[LAUNCHER_PID_ENV] = before
