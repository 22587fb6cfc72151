"""``snn-explorer bench --quick``: the structure of the result (not the timings)."""

from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys

import pytest

from engine.bench.suite import (
    NOT_AVAILABLE,
    QUICK_CASES,
    Section,
    quick_options,
    run_bench,
    train_worker,
)
from engine.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _positive(v) -> bool:
    return isinstance(v, float | int) and math.isfinite(v) and v > 0


@pytest.mark.slow
def test_quick_bench_structure():
    opts = quick_options(
        sections=("train_step", "equivalence", "inference"),
        paths=("reference", "app"),
        case_keys=(QUICK_CASES[0].key,),
    )
    result = run_bench(opts)
    assert result["machine"]["cores"] >= 1
    secs = result["sections"]
    assert list(secs) == ["train_step", "equivalence", "inference"]
    train = secs["train_step"]
    assert train["status"] == "ok"
    assert [k for k in train if k not in ("status", "seconds")] == [QUICK_CASES[0].key]
    for case in QUICK_CASES[:1]:
        row = train[case.key]
        assert row["label"] == case.label
        for path in opts.paths:
            r = row[path]
            assert r["status"] == "ok", r
            assert _positive(r["median_s"]) and _positive(r["cpu_median_s"])
            assert r["min_s"] <= r["median_s"]
            assert r["reps"] == opts.reps
            assert isinstance(r["peak_increase_mib"], float)
        assert _positive(row["app"]["speedup_vs_reference"])
        assert "memory_ratio_vs_reference" in row["app"]
    eq = secs["equivalence"]
    assert eq["app"]["spikes_equal"] is True
    assert eq["app"]["max_grad_diff_rel"] < 1e-4
    assert 0.0 < eq["output_spike_rate"] < 1.0
    inf = secs["inference"]
    assert all(_positive(inf[p]["median_ms"]) for p in ("reference", "app"))


def test_missing_hooks_are_reported_not_available():
    sections = (
        Section("ghost", "engine.no_such_module:run"),
        Section("ghost_fn", "engine.bench.suite:no_such_function"),
    )
    result = run_bench(quick_options(sections=("ghost", "ghost_fn")), sections=sections)
    assert result["sections"]["ghost"]["status"] == NOT_AVAILABLE
    assert result["sections"]["ghost_fn"]["status"] == NOT_AVAILABLE
    with pytest.raises(ConfigError, match="unknown"):
        run_bench(quick_options(sections=("nope",)))


def test_worker_reports_an_unusable_path():
    from dataclasses import asdict

    spec = {"case": asdict(QUICK_CASES[0]), "path": "nope", "warmup": 0, "reps": 1}
    with pytest.raises(ValueError, match="nope"):
        train_worker(spec)


def test_cli_json_runs_the_chosen_section():
    code = (
        "from app.cli import main; raise SystemExit(main(['bench', '--quick', '--json', "
        "'--sections', 'equivalence']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert list(result["sections"]) == ["equivalence"]
    assert result["sections"]["equivalence"]["app"]["spikes_equal"] is True
    bad = subprocess.run(
        [sys.executable, "-c", code.replace("'equivalence'", "'equivalence', '--paths', 'x'")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert bad.returncode == 1 and "--paths" in bad.stderr


def test_twins_section_times_each_spiking_model_against_its_twin():
    from engine.bench.twins import QUICK_CASES as TWIN_CASES
    from engine.models.registry import twin_of
    from engine.train.amp import resolve_amp

    result = run_bench(quick_options(sections=("twins",)))
    sec = result["sections"]["twins"]
    assert sec["status"] == "ok", sec
    want = ["fp32"] + (["bf16"] if resolve_amp("auto", "cpu") == "bf16" else [])
    rows = {k: v for k, v in sec.items() if isinstance(v, dict)}
    assert sorted(rows) == sorted(f"{name}_{p}" for name, *_ in TWIN_CASES for p in want)
    for r in rows.values():
        assert r["twin"] == twin_of(r["model"])
        assert _positive(r["spiking_step_s"]) and _positive(r["twin_step_s"])
        assert r["ratio"] == pytest.approx(r["spiking_step_s"] / r["twin_step_s"], rel=0.02)


def test_train_step_rows_name_the_default_path():
    from engine.train.amp import resolve_amp

    opts = quick_options(sections=("train_step",), paths=("app",), case_keys=(QUICK_CASES[0].key,))
    row = run_bench(opts)["sections"]["train_step"][QUICK_CASES[0].key]
    assert row["default_path"] == ("app_bf16" if resolve_amp("auto", "cpu") == "bf16" else "app")
