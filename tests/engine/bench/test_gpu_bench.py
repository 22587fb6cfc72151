"""The CUDA / Open Neuromorphic / distributed bench sections on this machine (small sizes)."""

from __future__ import annotations

import torch

from engine.bench.gpu import cuda_section, default_lif_path, on_step, time_step
from engine.bench.suite import SECTIONS, quick_options


def test_sections_are_listed():
    names = {s.name for s in SECTIONS}
    assert {"cuda", "open_neuromorphic", "distributed"} <= names
    assert all(s.resolve() is not None for s in SECTIONS if s.name in names)


def test_default_path_names_what_train_runs():
    assert default_lif_path("cpu") == "numba"  # numba ships with librosa
    if torch.cuda.is_available():
        assert default_lif_path("cuda") == "triton"


def test_cuda_section_without_cuda_says_so():
    if torch.cuda.is_available():
        return
    out = cuda_section(quick_options())
    assert out["status"] == "not available" and "CUDA" in out["reason"]


def test_open_neuromorphic_paths_agree_and_time():
    """The three paths of the case give the same weight gradient (same layer, same input)."""
    grads = {}
    for path in ("snntorch", "torch_loop", "app"):
        torch.manual_seed(0)
        run = on_step(path, steps=6, device="cpu", neurons=64, batch=3)
        run()
        grads[path] = run.layer.weight.grad.clone()
        res = time_step(run, "cpu", reps=1)
        assert res["status"] == "ok" and res["median_s"] > 0
    assert grads["app"].abs().sum() > 0
    torch.testing.assert_close(grads["app"], grads["torch_loop"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads["app"], grads["snntorch"], rtol=1e-4, atol=1e-5)
