"""A process and everything it started: list it, signal it, see what is still alive.

``torchrun`` starts each worker in a session of its own, so signalling torchrun's process group
does not reach the workers; and a torchrun killed with SIGKILL leaves them running. A job is
therefore stopped through a snapshot of the whole tree (read from ``/proc``), each member
identified by its pid and start time so a reused pid is never signalled. Where there is no
``/proc`` (macOS) the snapshot holds the root alone and its process group is what is signalled.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

PROC = "/proc"


@dataclass(frozen=True)
class Member:
    """One process of a tree: its pid and its start time (clock ticks after boot; 0 if unknown)."""

    pid: int
    start: int


def _stat(pid: int) -> tuple[int, str, int] | None:
    """``(ppid, state, start time)`` of ``pid`` from ``/proc/PID/stat``; None when it is gone."""
    try:
        with open(f"{PROC}/{pid}/stat", encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return int(fields[1]), fields[0], int(fields[19])


def snapshot(root: int) -> list[Member]:
    """``root`` and all its descendants now (``root`` first)."""
    me = _stat(root)
    members = [Member(root, me[2] if me else 0)]
    if not os.path.isdir(PROC):
        return members
    children: dict[int, list[Member]] = {}
    for name in os.listdir(PROC):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                children.setdefault(st[0], []).append(Member(int(name), st[2]))
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            members.append(child)
            todo.append(child.pid)
    return members


def is_alive(m: Member) -> bool:
    """True while the process ``m`` runs (a zombie has ended; a reused pid is not ``m``)."""
    if not os.path.isdir(PROC):
        try:
            os.kill(m.pid, 0)
        except OSError:
            return False
        return True
    st = _stat(m.pid)
    return st is not None and st[1] not in ("Z", "X") and (not m.start or st[2] == m.start)


def alive(members: list[Member]) -> list[Member]:
    return [m for m in members if is_alive(m)]


def signal_tree(members: list[Member], sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` to every living member (to its whole process group where it leads one, which
    covers what it started since); returns how many were signalled."""
    sent = 0
    for m in alive(members):
        try:
            if os.getpgid(m.pid) == m.pid:
                os.killpg(m.pid, sig)
            else:
                os.kill(m.pid, sig)
            sent += 1
        except (ProcessLookupError, PermissionError):
            continue
    return sent
