"""The training-step part of ``snn-explorer bench``: configurations, paths and the worker.

A *path* is one way of training the report's CSNN: ``reference`` (:mod:`engine.bench.reference`,
snnTorch's loop) or ``app`` (``engine.models.registry`` + the step ``engine.train.loop`` takes, in a
process set up as the app's training entry points set theirs up:
:func:`engine.train.memory.keep_freed_memory`), the latter with suffixes ``_bf16`` (bf16 autocast),
``_default`` (the app's default model options instead of the report's network) and
``_sysmalloc`` (glibc's default allocator settings). :func:`train_worker` times one (case, path)
in the process it runs in; :func:`run_worker` runs it in a fresh one.
"""

from __future__ import annotations

import gc
import json
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass

from engine.device import cpu_has_bf16

NOT_AVAILABLE = "not available"


@dataclass(frozen=True)
class TrainCase:
    """One training-step configuration of the report's CSNN."""

    key: str
    label: str
    input_shape: tuple[int, int, int]
    batch: int
    steps: int
    n_classes: int
    channels: tuple[int, ...] = (12, 64)
    kernels: tuple[int, ...] = (5, 3)


TRAIN_CASES = (
    TrainCase("mfcc_T25", "MFCC 1x20x216, B=32, T=25", (1, 20, 216), 32, 25, 3),
    TrainCase("mfcc_T50", "MFCC 1x20x216, B=32, T=50", (1, 20, 216), 32, 50, 3),
    TrainCase(
        "mnist_T25", "MNIST 1x28x28, B=128, T=25", (1, 28, 28), 128, 25, 10, (12, 64), (5, 5)
    ),
)


QUICK_CASES = (
    TrainCase("mfcc_quick", "MFCC 1x20x40, B=4, T=4", (1, 20, 40), 4, 4, 3),
    TrainCase("mnist_quick", "MNIST 1x28x28, B=4, T=3", (1, 28, 28), 4, 3, 10, (4, 8), (5, 5)),
)


PATHS = ("reference", "app", "app_bf16")


EXTRA_PATHS = ("app_default", "app_default_bf16", "app_sysmalloc", "app_bf16_sysmalloc")


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux); False when impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_kib() -> int:
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def _reference(case: TrainCase, device):
    import torch

    from engine.bench.reference import ReferenceCSNN, reference_train_step

    model = ReferenceCSNN(
        case.input_shape, case.n_classes, case.channels, case.kernels, steps=case.steps
    ).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x, y):
        return reference_train_step(model, opt, x, y)

    def infer(x):
        with torch.no_grad():
            return model(x)[0]

    return model, step, infer


def app_model(case: TrainCase, device=None, report: bool = True):
    """The app's CSNN for ``case``.

    ``report``: configured as the report's network (no batch norm or input scaling), so that it
    computes exactly what the reference computes; else with the app's default options (batch
    norm on the currents, normalised readout, scaled input: what a user trains).
    """
    from engine.models.registry import build_model

    opts = dict(channels=case.channels, kernels=case.kernels)
    if report:
        opts.update(
            batchnorm=False,
            readout_norm=False,
            input_norm="none",
            beta=0.9,
            threshold=1.0,
            reset="subtract",
            surrogate="arctan",
        )
    model = build_model("csnn", case.input_shape, case.n_classes, **opts)
    return model if device is None else model.to(device)


def _app(case: TrainCase, device, amp: str | None, report: bool = True):
    """The app's training step, as ``engine.train.loop`` takes it (AdamW, clipping, amp)."""
    import torch

    from engine.models.registry import class_scores, loss_value, run_model

    model = app_model(case, device, report=report)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0)
    dev_type = torch.device(device).type

    def amp_ctx():
        if amp is None:
            return nullcontext()
        return torch.autocast(dev_type, dtype=torch.bfloat16)

    def step(x, y):
        model.train()
        with amp_ctx():
            out = run_model(model, x, case.steps, "direct")
            loss = loss_value(out, y, "ce_count")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            _, decision = class_scores(out, "ce_count", "count")
            int((decision.argmax(1) == y).sum())
        return float(loss.detach())

    def infer(x):
        model.eval()
        with torch.inference_mode(), amp_ctx():
            return run_model(model, x, case.steps, "direct").spikes

    return model, step, infer


def build_path(path: str, case: TrainCase, device):
    """``reference``, or ``app`` with optional suffixes: ``_default`` (the app's
    default model options instead of the report's network), ``_bf16`` (bf16 autocast),
    ``_sysmalloc`` (without the app's :func:`engine.train.memory.keep_freed_memory`)."""
    if path == "reference":
        return _reference(case, device)
    base, *flags = path.split("_")
    if base != "app" or not set(flags) <= {"bf16", "default", "sysmalloc"}:
        raise ValueError(f"unknown bench path {path!r}")
    if "sysmalloc" not in flags:
        from engine.train.memory import keep_freed_memory

        keep_freed_memory()
    amp = "bf16" if "bf16" in flags else None
    return _app(case, device, amp, report="default" not in flags)


def bench_batch(case: TrainCase, device, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(case.batch, *case.input_shape, generator=g)
    y = torch.randint(0, case.n_classes, (case.batch,), generator=g)
    return x.to(device), y.to(device)


def _warm_kernels(device) -> None:
    """Compile the fused LIF's kernels once (Numba caches them on disk after the first run)."""
    import torch

    from engine.neuro.lif import lif_multistep

    cur = torch.randn(3, 2, 4, device=device, requires_grad=True)
    spk, _ = lif_multistep(cur)
    spk.sum().backward()
    static = torch.randn(2, 4, device=device, requires_grad=True)
    spk, _ = lif_multistep(static.unsqueeze(0).expand(3, 2, 4))
    spk.sum().backward()


def sync_device(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_worker(spec: dict) -> dict:
    """Time one (case, path) training step in THIS process (run it in a fresh one)."""
    import torch

    torch.manual_seed(0)
    case = TrainCase(**{**spec["case"], "input_shape": tuple(spec["case"]["input_shape"])})
    device = spec.get("device", "cpu")
    path = spec["path"]
    bf16 = path.endswith("_bf16")
    if bf16 and torch.device(device).type == "cpu" and not cpu_has_bf16():
        return {"status": NOT_AVAILABLE, "reason": "this CPU has no bf16 instructions"}
    x, y = bench_batch(case, device)
    _model, step, _infer = build_path(path, case, device)
    if path != "reference":
        _warm_kernels(device)
    gc.collect()
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _status_kib("VmRSS") or 0
        exact = _reset_peak_rss()
    wall, cpu = [], []
    for i in range(spec["warmup"] + spec["reps"]):
        sync_device(device)
        t0, c0 = time.perf_counter(), time.process_time()
        step(x, y)
        sync_device(device)
        if i >= spec["warmup"]:
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        method = "torch.cuda.max_memory_allocated() minus memory_allocated() before the steps"
    else:
        peak = (_peak_rss_kib() - base) / 1024
        method = (
            "VmHWM after the steps minus VmRSS before them (peak reset via /proc/self/clear_refs)"
            if exact
            else "ru_maxrss minus VmRSS before the steps (peak includes set-up)"
        )
    return {
        "status": "ok",
        "median_s": statistics.median(wall),
        "min_s": min(wall),
        "cpu_median_s": statistics.median(cpu),
        "peak_increase_mib": round(peak, 1),
        "memory_method": method,
        "threads": torch.get_num_threads(),
        "reps": len(wall),
    }


def run_worker(spec: dict, timeout_s: float) -> dict:
    cmd = [sys.executable, "-m", "engine.bench.suite", "--worker", json.dumps(spec)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {timeout_s:g} s"}
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"status": "error", "reason": tail[0][:300]}
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"status": "error", "reason": "worker printed no JSON"}


def reference_params(ref):
    for i, conv in enumerate(ref.convs):
        yield f"conv{i + 1}.weight", conv.weight
        yield f"conv{i + 1}.bias", conv.bias
    yield "fc.weight", ref.fc.weight
    yield "fc.bias", ref.fc.bias


def app_params(app):
    for conv in app.convs:
        yield conv.weight
        yield conv.bias
    yield app.fc.weight
    yield app.fc.bias


def copy_reference_weights(ref, app) -> None:
    """Give the app's CSNN the reference's weights (same layer sizes)."""
    import torch

    with torch.no_grad():
        for (_, src), dst in zip(reference_params(ref), app_params(app)):
            dst.copy_(src)


def ratio(a, b):
    """``a / b`` rounded to 3 decimals; None when either is missing or zero."""
    return round(a / b, 3) if a and b else None


def train_step_section(opts) -> dict:
    """Median step time and peak memory increase per case and path, and app/reference ratios.

    ``opts``: :class:`engine.bench.suite.BenchOptions` (its cases, paths, device and counts);
    each (case, path) runs in a fresh subprocess (:func:`run_worker`)."""
    import torch

    from engine.train.amp import resolve_amp

    # the path ``snn-explorer train`` takes here with no options (amp = "auto")
    auto = resolve_amp("auto", torch.device(opts.device).type)
    rows = {}
    for case in opts.cases():
        row = {"label": case.label, "default_path": "app_bf16" if auto == "bf16" else "app"}
        for path in opts.paths:
            spec = {
                "case": asdict(case),
                "path": path,
                "device": opts.device,
                "warmup": opts.warmup,
                "reps": opts.reps,
            }
            row[path] = run_worker(spec, opts.timeout_s)
        ref = row.get("reference", {})
        for path in opts.paths:
            r = row[path]
            if path == "reference" or r.get("status") != "ok" or ref.get("status") != "ok":
                continue
            r["speedup_vs_reference"] = ratio(ref["median_s"], r["median_s"])
            r["cpu_speedup_vs_reference"] = ratio(ref["cpu_median_s"], r["cpu_median_s"])
            r["memory_ratio_vs_reference"] = ratio(r["peak_increase_mib"], ref["peak_increase_mib"])
        rows[case.key] = row
    return rows
