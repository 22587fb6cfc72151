"""Follow a run folder that another process writes: its new events, step rows and traces.

A run trained in other processes (``snn-explorer train --nproc N``, started by the Training tab)
reaches the tab only through its run folder. :class:`RunTail` reads what was added since the last
:meth:`RunTail.poll` and gives it back as the events the loop yields in-process, in the loop's
order, so the same :class:`engine.train.history.RunHistory` and views draw it:

- ``events.jsonl`` (appended line by line): ``RunStarted``, ``EpochEnd``, ``Checkpointed``,
  ``RunFinished`` (:func:`event_from_json` turns a line back into its dataclass);
- ``steps.csv`` (appended per step; rewritten once when a resumed run starts): ``StepEnd``;
- ``traces.npz`` (replaced atomically each epoch): ``Traces``.

A half-written last line is kept for the next poll. Qt-free; the caller polls from a timer.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np

from engine.train.events import (
    Checkpointed,
    EpochEnd,
    LayerStats,
    Preparing,
    RunFinished,
    RunStarted,
    StepEnd,
    Traces,
)
from engine.train.recorded_run import load_traces
from engine.train.run_exports import STEP_COLUMNS
from engine.train.run_folder import EVENTS_FILE, STEPS_CSV, TRACES_FILE

# the events.jsonl kinds read back ("Traces" live in traces.npz)
EVENT_TYPES = {c.__name__: c for c in (Preparing, RunStarted, EpochEnd, Checkpointed, RunFinished)}


def _float(v) -> float:
    try:
        return math.nan if v is None else float(v)
    except (TypeError, ValueError):
        return math.nan


def _array(v) -> np.ndarray:
    """A JSON list as an array: int64 when every entry is an int, else float (null = NaN)."""
    a = np.asarray(v if v is not None else [], dtype=object)
    if a.size and all(isinstance(x, int) and not isinstance(x, bool) for x in a.flat):
        return a.astype(np.int64)
    return np.vectorize(_float, otypes=[float])(a) if a.size else a.astype(float)


def _int(v) -> int:
    if isinstance(v, int):
        return v
    f = _float(v)
    return int(f) if math.isfinite(f) else 0


def _value(kind: str, v):
    """A JSON value as the field type ``kind`` (the dataclass's annotation string) wants."""
    if kind.endswith("| None") and v is None:
        return None
    kind = kind.removesuffix(" | None")
    if kind == "float":
        return _float(v)
    if kind == "int":
        return _int(v)
    if kind == "bool":
        return bool(v)
    if kind == "str":
        return "" if v is None else str(v)
    if kind == "dict":
        return dict(v or {})
    if kind == "np.ndarray":
        return _array(v)
    if kind == "tuple[LayerStats, ...]":
        return tuple(
            LayerStats(
                str(x.get("name", "")),
                _int(x.get("neurons")),
                _float(x.get("firing_rate")),
                _float(x.get("dead_fraction")),
            )
            for x in v or ()
            if isinstance(x, dict)
        )
    if kind.startswith("tuple["):
        return tuple(v or ())
    return v


def event_from_json(d: dict):
    """The event dataclass of one ``events.jsonl`` line (None for an unknown kind).

    The inverse of :func:`engine.train.events.to_json`: nulls become NaN, lists become arrays or
    tuples, a field the line lacks gets its type's empty value.
    """
    cls = EVENT_TYPES.get(str(d.get("event")))
    if cls is None:
        return None
    return cls(**{f.name: _value(str(f.type), d.get(f.name)) for f in dataclasses.fields(cls)})


def _order(ev, i: int) -> tuple:
    """Sort key that puts one poll's events in the loop's order (steps before their epoch's end,
    the end of the run last), whichever file they came from."""
    if isinstance(ev, (Preparing, RunStarted)):
        return (-1, 0, i)
    if isinstance(ev, StepEnd):
        return (ev.epoch, 0, i)
    if isinstance(ev, (EpochEnd, Traces)):
        return (ev.epoch, 1, i)
    if isinstance(ev, Checkpointed) and ev.reason != "stop":
        return (ev.epoch, 2, i)
    return (math.inf, 0, i)  # a stop's checkpoint, RunFinished


class _Lines:
    """New complete lines of a file that grows by appends (and may be replaced as a whole)."""

    def __init__(self, path: Path, from_end: bool):
        self.path = path
        self.offset = 0
        self.inode = None
        self.partial = b""
        if from_end:
            try:
                st = path.stat()
                self.offset, self.inode = st.st_size, st.st_ino
            except OSError:
                pass

    def read(self) -> list[str]:
        try:
            st = self.path.stat()
        except OSError:
            return []
        if st.st_ino != self.inode or st.st_size < self.offset:  # replaced: read it again
            self.inode, self.offset, self.partial = st.st_ino, 0, b""
        if st.st_size == self.offset:
            return []
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        self.offset += len(data)
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines if line.strip()]


class RunTail:
    """What another process adds to the run folder ``run_dir``, as training events.

    Parameters
    ----------
    run_dir : path
        The run folder (it may not exist yet).
    resume : bool
        The folder already holds a run that is being resumed: what is there now was already
        shown, so only what is added from now on is returned.
    """

    def __init__(self, run_dir: str | os.PathLike, resume: bool = False):
        self.run_dir = Path(run_dir)
        self._events = _Lines(self.run_dir / EVENTS_FILE, from_end=resume)
        self._steps = _Lines(self.run_dir / STEPS_CSV, from_end=False)
        self._header: list[str] | None = None
        self.steps_per_epoch = 0
        self._next_step = 1  # the lowest global step not yet returned
        self._traces_stamp = self._stamp() if resume else None
        self.finished: RunFinished | None = None
        if resume:
            self._skip_existing()

    def _skip_existing(self) -> None:
        for line in self._events_before_now():
            ev = self._parse(line)
            if isinstance(ev, RunStarted):
                self.steps_per_epoch = ev.steps_per_epoch
        for row in self._rows(self._steps.read()):
            self._next_step = max(self._next_step, _int(row.get("global_step")) + 1)

    def _events_before_now(self) -> list[str]:
        try:
            text = (self.run_dir / EVENTS_FILE).read_bytes()[: self._events.offset]
        except OSError:
            return []
        return [s for s in text.decode("utf-8", "replace").splitlines() if s.strip()]

    def _stamp(self):
        try:
            st = (self.run_dir / TRACES_FILE).stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    @staticmethod
    def _parse(line: str):
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            return None
        return event_from_json(d) if isinstance(d, dict) else None

    def _rows(self, lines: list[str]) -> list[dict]:
        rows = []
        for values in csv.reader(lines):
            if values and values[0] == STEP_COLUMNS[0]:
                self._header = values
                continue
            header = self._header or list(STEP_COLUMNS)
            if len(values) == len(header):
                rows.append(dict(zip(header, values)))
        return rows

    def poll(self) -> list:
        """The events added since the last call, in the order the loop yielded them."""
        out = []
        for line in self._events.read():
            ev = self._parse(line)
            if ev is None:
                continue
            if isinstance(ev, RunStarted):
                self.steps_per_epoch = ev.steps_per_epoch
                self._next_step = ev.start_epoch * ev.steps_per_epoch + 1
            elif isinstance(ev, RunFinished):
                self.finished = ev
            out.append(ev)
        for row in self._rows(self._steps.read()):
            g = _int(row.get("global_step"))
            if g < self._next_step:
                continue  # shown before (a resumed run rewrites the file once)
            self._next_step = g + 1
            out.append(
                StepEnd(
                    epoch=_int(row.get("epoch")),
                    step=_int(row.get("step")),
                    steps_per_epoch=self.steps_per_epoch,
                    global_step=g,
                    loss=_float(row.get("loss")),
                    accuracy=_float(row.get("accuracy")),
                    lr=_float(row.get("lr")),
                    samples_per_s=_float(row.get("samples_per_s")),
                    elapsed_s=_float(row.get("elapsed_s")),
                )
            )
        stamp = self._stamp()
        if stamp is not None and stamp != self._traces_stamp:
            traces = load_traces(self.run_dir / TRACES_FILE)
            if traces is not None:
                self._traces_stamp = stamp
                out.append(traces)
        keyed = sorted((_order(ev, i), ev) for i, ev in enumerate(out))
        return [ev for _, ev in keyed]
