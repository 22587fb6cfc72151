"""The bench sections that need the window: UI stall and soak (``snn-explorer bench``).

The engine never starts ``app`` modules, so the CLI adds these to the engine's sections
(:data:`APP_SECTIONS`). Each runs a Qt program in a child process and returns a JSON-safe dict:
``ui_stall`` is ``python -m app.ui_bench`` (UI timer lateness while the Training tab trains),
``soak`` is ``python -m app.soak`` (10 minutes, 1 with ``--quick``, of training and classifying
with the whole window open: memory growth and UI lateness; opt-in).
"""

from __future__ import annotations

import json
import subprocess
import sys

from engine.bench.suite import NOT_AVAILABLE, BenchOptions, Section


def ui_stall_section(opts: BenchOptions) -> dict:
    """UI-thread timer lateness while the Training tab trains (``app.ui_bench``).

    Runs as ``python -m app.ui_bench --json`` in a subprocess, so a Qt crash stays there.
    """
    seconds = "3" if opts.quick else "8"
    cmd = [sys.executable, "-m", "app.ui_bench", "--json", "--seconds", seconds]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=opts.timeout_s)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {opts.timeout_s:g} s"}
    if "No module named" in out.stderr and "ui_bench" in out.stderr:
        return {"status": NOT_AVAILABLE, "reason": "app.ui_bench is missing"}
    if out.returncode != 0:
        return {"status": "error", "reason": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_soak_subprocess(
    minutes: float = 10.0, model: str = "csnn", extra: list[str] | None = None
) -> dict:
    """Run ``python -m app.soak --json`` for ``minutes``; its result as a dict.

    On failure: ``{"status": "error" | "not available", "reason": ...}``.
    """
    cmd = [sys.executable, "-m", "app.soak", "--json", "--minutes", f"{minutes:g}"]
    cmd += ["--model", model, *(extra or [])]
    limit = minutes * 60 + 900  # plus the first model's training and the wind-down
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {limit:g} s"}
    if "No module named" in out.stderr and "app.soak" in out.stderr:
        return {"status": "not available", "reason": "app.soak is missing"}
    if out.returncode != 0:
        return {"status": "error", "reason": (out.stderr.strip().splitlines() or ["?"])[-1]}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.pop("rss_samples", None)  # the bench keeps the summary; the CLI prints the series
    return result


def soak_section(opts) -> dict:
    """Bench section: 10 minutes (1 with ``opts.quick``) of training and classifying."""
    return run_soak_subprocess(1.0 if getattr(opts, "quick", False) else 10.0)


APP_SECTIONS = (
    Section("ui_stall", "app.bench_sections:ui_stall_section", True, "Training tab UI stall"),
    Section("soak", "app.bench_sections:soak_section", False, "10 minutes of training and live"),
)
