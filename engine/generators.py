"""Driving the engine's long jobs: every long job is a generator of events that returns a result."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any


def run_to_end(gen: Generator, on_event: Callable[[Any], None] | None = None):
    """Exhaust ``gen`` (handing each event to ``on_event``) and return its return value."""
    while True:
        try:
            event = next(gen)
        except StopIteration as done:
            return done.value
        if on_event is not None:
            on_event(event)
