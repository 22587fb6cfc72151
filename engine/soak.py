"""Hook for ``snn-explorer bench``: the soak run (``app.soak``) in a subprocess.

The soak trains on the Training tab and classifies on the Live tab with the whole window open for
minutes, and reports memory growth and UI-timer lateness. It needs Qt, which the engine never
imports, so it runs as ``python -m app.soak --json`` in a child process, like the UI-stall
section. Not part of the default bench (it takes 10 minutes).
"""

from __future__ import annotations

import json
import subprocess
import sys


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
