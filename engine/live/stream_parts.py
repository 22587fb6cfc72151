"""The live audio stream's building blocks: a ring buffer of samples and a level gate.

:class:`RingBuffer` keeps the latest samples by absolute position; :class:`LevelGate` cuts the
stream into sounds (level above the noise floor, with a hang-over). The sliding-window
classifier of :mod:`engine.live.window` is built on both.
"""

from __future__ import annotations

from collections import deque

import numpy as np


# ---------------------------------------------------------------------------------- buffer
class RingBuffer:
    """The newest ``capacity`` samples of a stream, addressed by absolute sample index.

    Samples before the stream's start read as zeros (silence), so the first window can be
    classified one hop after the start instead of one full window after it.
    """

    def __init__(self, capacity: int):
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self.total = 0  # samples written since the start

    def write(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if len(x) >= self.capacity:
            self.total += len(x)  # only the newest `capacity` samples can be kept
            self._data[:] = np.roll(x[-self.capacity :], self.total % self.capacity)
            return
        start = self.total % self.capacity
        first = min(len(x), self.capacity - start)
        self._data[start : start + first] = x[:first]
        self._data[: len(x) - first] = x[first:]
        self.total += len(x)

    def holds(self, end: int, n: int) -> bool:
        """True when samples ``[end - n, end)`` can be read (negative indices are silence)."""
        return end <= self.total and max(end - n, 0) >= self.total - self.capacity

    def read(self, end: int, n: int) -> np.ndarray:
        """A copy of samples ``[end - n, end)``; indices before 0 are zeros."""
        if not self.holds(end, n):
            raise ValueError(f"samples [{end - n}, {end}) are not in the buffer")
        out = np.zeros(n, dtype=np.float32)
        lo = max(end - n, 0)
        if end > lo:
            out[n - (end - lo) :] = self._data[np.arange(lo, end) % self.capacity]
        return out

    def latest(self, n: int) -> np.ndarray:
        return self.read(self.total, n)


# ---------------------------------------------------------------------------------- level gate
class LevelGate:
    """Cuts a stream into sounds: 10-ms frames louder than the noise floor by ``margin_db``.

    The floor is the quietest frame of the last ``floor_s`` seconds, so a steady hum raises the
    threshold instead of counting as one endless sound; the threshold never drops below
    ``min_db`` (digital silence would otherwise make every dither a sound). A sound ends after
    ``hangover_s`` of quiet (the pause inside "six" must not split it), lasts at least
    ``min_s``, and is cut at ``max_s``.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        min_db: float = -60.0,
        margin_db: float = 12.0,
        hangover_s: float = 0.2,
        min_s: float = 0.06,
        max_s: float = 1.0,
        floor_s: float = 3.0,
    ):
        self.sample_rate = int(sample_rate)
        self.frame = max(1, int(round(0.01 * sample_rate)))
        self.min_db = float(min_db)
        self.margin_db = float(margin_db)
        self.hangover = max(1, int(round(hangover_s / 0.01)))
        self.min_frames = max(1, int(round(min_s / 0.01)))
        self.max_frames = max(self.min_frames, int(round(max_s / 0.01)))
        self._recent: deque[float] = deque(maxlen=max(1, int(round(floor_s / 0.01))))
        self._rest = np.zeros(0, np.float32)
        self._frames = 0  # frames seen
        self._start: int | None = None  # first loud frame of the open sound
        self._last_loud = 0
        self.threshold_db = self.min_db

    def feed(self, samples: np.ndarray) -> list[tuple[int, int]]:
        """Sounds closed by these samples, as ``(start, end)`` sample indices."""
        x = np.concatenate([self._rest, np.asarray(samples, np.float32).reshape(-1)])
        n = len(x) // self.frame
        self._rest = x[n * self.frame :]
        if n == 0:
            return []
        frames = x[: n * self.frame].reshape(n, self.frame)
        db = 10.0 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)
        closed = []
        for level in db:
            i = self._frames
            self._frames += 1
            self._recent.append(float(level))
            self.threshold_db = max(self.min_db, min(self._recent) + self.margin_db)
            loud = level > self.threshold_db
            if self._start is None:
                if loud:
                    self._start, self._last_loud = i, i
                continue
            if loud:
                self._last_loud = i
            length = self._last_loud + 1 - self._start
            if i - self._last_loud >= self.hangover or i + 1 - self._start >= self.max_frames:
                if length >= self.min_frames:
                    closed.append((self._start * self.frame, (self._last_loud + 1) * self.frame))
                self._start = None
        return closed


# ---------------------------------------------------------------------------------- events
