"""The Triton LIF kernels (engine.neuro.lif_triton) equal the torch loop.

No GPU here: the kernels run in Triton's interpreter, which must be chosen (``TRITON_INTERPRET=1``)
before ``triton`` is first imported. Other tests in the same pytest process may already have
imported it, so each comparison runs in a child Python started by the test; it prints one JSON
line per case, and the assertions are made here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

CHILD = r"""
import itertools, json, sys
import torch
from engine.neuro.lif import RESETS, lif_sequence, lif_multistep_reference
from engine.neuro.surrogate import SURROGATES

torch.set_num_threads(1)
cases = json.loads(sys.argv[1])


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


for case in cases:
    steps, batch, width = case["shape"]
    dtype = getattr(torch, case["dtype"])
    g = torch.Generator().manual_seed(case["seed"])
    cur = torch.randn((steps, batch, width), generator=g, dtype=dtype) * 1.5 + 0.2
    if case["static"]:
        cur = cur[0]
    beta = case["beta"]
    if beta != "float":
        bshape = () if beta == "scalar" else (width,)
        b0 = torch.rand(bshape, generator=g, dtype=dtype) * 0.5 + 0.45
    mem0 = torch.randn((batch, width), generator=g, dtype=dtype) * 1.2 if case["mem0"] else None
    out = []
    for backend in ("triton", "reference"):
        c = cur.clone().requires_grad_()
        b = 0.85 if beta == "float" else b0.clone().requires_grad_()
        m = None if mem0 is None else mem0.clone().requires_grad_()
        if backend == "triton":
            kw = {"steps": steps} if case["static"] else {}
            s, u = lif_sequence(c, b, case["thr"], case["reset"], case["surrogate"], None, m,
                                backend="triton", **kw)
        else:
            x = c.expand(steps, *c.shape) if case["static"] else c
            s, u = lif_multistep_reference(x, b, case["thr"], case["reset"], case["surrogate"], None, m)
        gen = torch.Generator().manual_seed(99)
        ws = torch.randn(s.shape, generator=gen, dtype=dtype)
        wu = torch.randn(u.shape, generator=gen, dtype=dtype)
        ((s * ws).sum() + (u * wu).sum()).backward()
        out.append((s.detach(), u.detach(), c.grad,
                    None if beta == "float" else b.grad, None if m is None else m.grad))
    (s1, u1, gc1, gb1, gm1), (s2, u2, gc2, gb2, gm2) = out
    print(json.dumps({
        "case": case,
        "spikes_equal": bool(torch.equal(s1, s2)),
        "mem_equal": bool(torch.equal(u1, u2)),
        "rate": float(s2.mean()),
        "g_cur": rel(gc1, gc2),
        "g_beta": None if gb1 is None else rel(gb1, gb2),
        "g_mem0": None if gm1 is None else rel(gm1, gm2),
    }), flush=True)
"""


def _run_cases(cases: list[dict]) -> list[dict]:
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cases)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _cases():
    import random

    rnd = random.Random(15)
    out = []
    resets = ("subtract", "zero", "none")
    surrogates = ("arctan", "sigmoid", "fast_sigmoid")
    betas = ("float", "scalar", "channel")
    i = 0
    for reset in resets:
        for surrogate in surrogates:
            out.append(
                {
                    "shape": [rnd.randint(1, 9), rnd.randint(1, 3), rnd.randint(1, 300)],
                    "dtype": "float32" if i % 3 else "float64",
                    "reset": reset,
                    "surrogate": surrogate,
                    "beta": betas[i % 3],
                    "mem0": bool(i % 2),
                    "static": i in (4, 7),
                    "thr": 1.0 if i % 4 else 0.7,
                    "seed": rnd.randint(0, 10_000),
                }
            )
            i += 1
    return out


@pytest.fixture(scope="module")
def results():
    pytest.importorskip("triton")
    return _run_cases(_cases())


def test_every_reset_and_surrogate_is_covered(results):
    seen = {(r["case"]["reset"], r["case"]["surrogate"]) for r in results}
    assert len(seen) == 9
    assert {r["case"]["beta"] for r in results} == {"float", "scalar", "channel"}


def test_spikes_and_membranes_identical(results):
    for r in results:
        assert r["spikes_equal"], r
        assert r["mem_equal"], r


def test_gradients_close(results):
    for r in results:
        assert r["g_cur"] < 1e-5, r
        if r["g_beta"] is not None:
            assert r["g_beta"] < 1e-5, r
        if r["g_mem0"] is not None:
            assert r["g_mem0"] < 1e-5, r
    # the data exercise both spikes and silence
    assert any(0.0 < r["rate"] < 1.0 for r in results)


def test_backend_triton_without_interpreter_is_a_config_error():
    from engine.errors import ConfigError

    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        pytest.skip("this process runs Triton interpreted")
    import torch

    from engine.neuro.lif import lif_sequence

    with pytest.raises(ConfigError, match="triton"):
        lif_sequence(torch.zeros(3, 2, 4), backend="triton")
