"""engine.generators.run_to_end: a long job's generator driven to its return value."""

from __future__ import annotations

from engine.generators import run_to_end


def _job(n):
    yield from range(n)
    return f"done after {n}"


def test_returns_the_generators_value_and_hands_over_every_event():
    seen = []
    assert run_to_end(_job(3), seen.append) == "done after 3"
    assert seen == [0, 1, 2]
    assert run_to_end(_job(0)) == "done after 0"
