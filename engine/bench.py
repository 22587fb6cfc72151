"""``snn-explorer bench``: speed and memory of training, inference and features, in one run.

Sections (``SECTIONS``, an explicit list; each returns a JSON-safe dict):

``train_step``
    The report's CSNN training step (MFCC 1x20x216, B=32, T=25 and T=50; MNIST 1x28x28, B=128,
    T=25) for the reference (:mod:`engine.bench_reference`: snnTorch ``Leaky`` in a Python loop
    over time, as report Fig. 24 and snnTorch's tutorials write it) and for the app's training
    path (``engine.models.build_model("csnn")`` + the step ``engine.training`` takes: the direct
    input's first block computed once, stateless layers over all ``T x B`` samples, the fused LIF
    of :mod:`engine.lif`; ``app_bf16`` adds bf16 autocast where the CPU has bf16 instructions).
    Each (case, path) runs in a FRESH subprocess, so that no allocator or cache state leaks
    between them. Time: median wall time of ``reps`` steps after ``warmup`` steps (and the median
    process CPU time, which other load on the machine disturbs less). Memory: the peak resident
    set size during the steps minus the resident size just before them (Linux: the peak is
    reset through ``/proc/self/clear_refs`` after set-up, so imports, data and one-off kernel
    compilation are not counted; elsewhere ``ru_maxrss``, which includes them).
``equivalence``
    The app's CSNN with the reference's weights on the same batch: output spikes equal?
    largest membrane and gradient differences.
``inference``
    Batch-1 latency of the MFCC CSNN at T=25 (median of many forward passes, no grad).
``features``
    Cold first MFCC in a fresh process (interpreter start to the first feature matrix, with
    ``engine.features``), and MFCC clips per second, ``engine.features`` against librosa.
``live_latency``, ``ui_stall``
    Hooks to the Live tab's latency benchmark (``engine.live_bench.live_latency``) and to the
    Training tab's UI-stall benchmark (``python -m app.ui_bench --json``, a subprocess: the
    engine never imports the app). A hook whose code is absent reports ``"not available"``.
``time_to_accuracy`` (not run by default: minutes of training)
    FSDD test accuracy against wall time for the reference recipe and the app's best recipe.

Run ``python -m engine.bench`` or ``snn-explorer bench [--json] [--quick]``.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

NOT_AVAILABLE = "not available"


# --------------------------------------------------------------------------- cases and options


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
PATHS = ("reference", "app", "app_bf16", "prototype", "prototype_bf16")
EXTRA_PATHS = (
    "app_default",
    "app_default_bf16",
    "prototype_default",
    "prototype_default_bf16",
    "prototype_malloc",
    "prototype_bf16_malloc",
)
# "prototype": the app's CSNN modules run through :func:`prototype_forward` (the conv blocks
# through engine.spikeops), the forward proposed for engine.models_snn.CSNN


@dataclass(frozen=True)
class BenchOptions:
    """What to run and how long."""

    quick: bool = False
    device: str = "cpu"
    warmup: int = 2
    reps: int = 5
    sections: tuple[str, ...] | None = None  # None: every section with default=True
    paths: tuple[str, ...] = PATHS
    case_keys: tuple[str, ...] | None = None  # None: every case of the chosen size
    timeout_s: float = 900.0  # per subprocess

    def cases(self) -> tuple[TrainCase, ...]:
        cases = QUICK_CASES if self.quick else TRAIN_CASES
        if self.case_keys is None:
            return cases
        return tuple(c for c in cases if c.key in self.case_keys)


def quick_options(**kw) -> BenchOptions:
    return BenchOptions(quick=True, warmup=1, reps=2, **kw)


# --------------------------------------------------------------------------- machine facts


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 dot-product instructions (AVX512-BF16 or AMX)."""
    import torch

    cap = torch.backends.cpu.get_cpu_capability()
    if "AVX512" not in cap:
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def machine_info() -> dict:
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": cpu_has_bf16(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    return info


# --------------------------------------------------------------------------- memory probes


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


# --------------------------------------------------------------------------- models and steps


def _reference(case: TrainCase, device):
    import torch

    from engine.bench_reference import ReferenceCSNN, reference_train_step

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
    from engine.models import build_model

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


def prototype_forward(model, x, steps: int):
    """The app's CSNN forward with :mod:`engine.spikeops` for its stateless layers.

    The change proposed for ``engine.models_snn.CSNN.forward`` (same modules, same weights, same
    result); the bench's ``prototype`` paths measure it until the model does it itself.
    """
    from engine.models_snn import SpikingOutput
    from engine.spikeops import conv_block, linear_seq

    x, static, t = model._prepare(x, steps)
    spk = None
    for i, (conv, bn, pl, lif) in enumerate(zip(model.convs, model.bns, model.pools, model.lifs)):
        if i == 0 and static:
            cur = conv_block(x, conv, bn, pl)
            cur = cur.unsqueeze(0).expand(t, *cur.shape)
        else:
            src = x if i == 0 else spk
            cur = conv_block(src.flatten(0, 1), conv, bn, pl, binary=i > 0)
            cur = cur.unflatten(0, src.shape[:2])
        spk = src = None  # let the previous layer's spikes go before the next [T, ...] arrays
        spk, _mem = lif(cur)
        cur = _mem = None
    if model.hidden:
        cur = linear_seq(spk, model.fc_hidden, binary=True)
        cur = model.bn_hidden(cur.flatten(0, 1)).unflatten(0, cur.shape[:2])
        spk = None
        spk, _ = model.lif_hidden(cur)
    cur = linear_seq(spk, model.fc, binary=True)
    bn_out = getattr(model, "bn_out", None)
    if bn_out is not None:
        cur = bn_out(cur.flatten(0, 1)).unflatten(0, cur.shape[:2])
    out_spk, out_mem = model.out(cur)
    return SpikingOutput(out_spk, out_mem, None)


def _app(case: TrainCase, device, amp: str | None, prototype: bool = False, report: bool = True):
    """The app's training step, as ``engine.training`` takes it (AdamW, clipping, amp)."""
    import torch

    from engine.models import class_scores, loss_value
    from engine.models import run_model as _run_model

    model = app_model(case, device, report=report)
    if prototype:

        def run_model(m, x, steps, _encoder):
            return prototype_forward(m, x, steps)
    else:
        run_model = _run_model
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


def _build_path(path: str, case: TrainCase, device):
    """``reference``, or ``app`` / ``prototype`` with optional suffixes: ``_default`` (the app's
    default model options instead of the report's network), ``_bf16`` (bf16 autocast),
    ``_malloc`` (:func:`engine.spikeops.keep_freed_memory` first)."""
    if path == "reference":
        return _reference(case, device)
    base, *flags = path.split("_")
    if base not in ("app", "prototype") or not set(flags) <= {"bf16", "default", "malloc"}:
        raise ValueError(f"unknown bench path {path!r}")
    if "malloc" in flags:
        from engine.spikeops import keep_freed_memory

        keep_freed_memory()
    amp = "bf16" if "bf16" in flags else None
    return _app(case, device, amp, prototype=base == "prototype", report="default" not in flags)


def _batch(case: TrainCase, device, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(case.batch, *case.input_shape, generator=g)
    y = torch.randint(0, case.n_classes, (case.batch,), generator=g)
    return x.to(device), y.to(device)


def _warm_kernels(device) -> None:
    """Compile the fused LIF's kernels once (Numba caches them on disk after the first run)."""
    import torch

    from engine.lif import lif_multistep

    cur = torch.randn(3, 2, 4, device=device, requires_grad=True)
    spk, _ = lif_multistep(cur)
    spk.sum().backward()
    static = torch.randn(2, 4, device=device, requires_grad=True)
    spk, _ = lif_multistep(static.unsqueeze(0).expand(3, 2, 4))
    spk.sum().backward()


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# --------------------------------------------------------------------------- subprocess workers


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
    x, y = _batch(case, device)
    _model, step, _infer = _build_path(path, case, device)
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
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        step(x, y)
        _sync(device)
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


def _run_worker(spec: dict, timeout_s: float) -> dict:
    cmd = [sys.executable, "-m", "engine.bench", "--worker", json.dumps(spec)]
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


# --------------------------------------------------------------------------- sections


def _ratio(a, b):
    return round(a / b, 3) if a and b else None


def train_step_section(opts: BenchOptions) -> dict:
    """Median step time and peak memory increase per case and path, and app/reference ratios."""
    rows = {}
    for case in opts.cases():
        row = {"label": case.label}
        for path in opts.paths:
            spec = {
                "case": asdict(case),
                "path": path,
                "device": opts.device,
                "warmup": opts.warmup,
                "reps": opts.reps,
            }
            row[path] = _run_worker(spec, opts.timeout_s)
        ref = row.get("reference", {})
        for path in opts.paths:
            r = row[path]
            if path == "reference" or r.get("status") != "ok" or ref.get("status") != "ok":
                continue
            r["speedup_vs_reference"] = _ratio(ref["median_s"], r["median_s"])
            r["cpu_speedup_vs_reference"] = _ratio(ref["cpu_median_s"], r["cpu_median_s"])
            r["memory_ratio_vs_reference"] = _ratio(
                r["peak_increase_mib"], ref["peak_increase_mib"]
            )
        rows[case.key] = row
    return rows


def equivalence_section(opts: BenchOptions) -> dict:
    """The app's CSNN with the reference's weights: same spikes, same gradients?"""
    import torch

    from engine.bench_reference import ReferenceCSNN
    from engine.models import run_model

    base = opts.cases()[0]
    case = TrainCase(**{**asdict(base), "batch": 4})
    torch.manual_seed(0)
    ref = ReferenceCSNN(
        case.input_shape, case.n_classes, case.channels, case.kernels, steps=case.steps
    )
    app = app_model(case)
    copy_reference_weights(ref, app)
    x, _ = _batch(case, "cpu", seed=1)
    x = x * 2.0  # a stronger current: more spikes in every layer
    spk_r, mem_r = ref(x)
    w = torch.randn(spk_r.shape, generator=torch.Generator().manual_seed(2))
    (spk_r * w).sum().add(mem_r.sum()).backward()
    label = f"{base.label.split(',')[0]}, B={case.batch}, T={case.steps}"
    result = {"case": label, "output_spike_rate": round(float(spk_r.detach().mean()), 4)}
    for name, forward in (
        ("app", lambda m: run_model(m, x, case.steps, "direct")),
        ("prototype", lambda m: prototype_forward(m, x, case.steps)),
    ):
        app.zero_grad(set_to_none=True)
        out = forward(app)
        (out.spikes * w).sum().add(out.mem.sum()).backward()
        grads = {}
        for (pname, p_ref), p_app in zip(_reference_params(ref), _app_params(app)):
            scale = float(p_ref.grad.abs().max()) or 1.0
            grads[pname] = float((p_ref.grad - p_app.grad).abs().max()) / scale
        result[name] = {
            "spikes_equal": bool(torch.equal(spk_r, out.spikes)),
            "max_membrane_diff": float((mem_r - out.mem).detach().abs().max()),
            "max_grad_diff_rel": max(grads.values()),
            "grad_diff_rel": grads,
        }
    return result


def _reference_params(ref):
    for i, conv in enumerate(ref.convs):
        yield f"conv{i + 1}.weight", conv.weight
        yield f"conv{i + 1}.bias", conv.bias
    yield "fc.weight", ref.fc.weight
    yield "fc.bias", ref.fc.bias


def _app_params(app):
    for conv in app.convs:
        yield conv.weight
        yield conv.bias
    yield app.fc.weight
    yield app.fc.bias


def copy_reference_weights(ref, app) -> None:
    """Give the app's CSNN the reference's weights (same layer sizes)."""
    import torch

    with torch.no_grad():
        for (_, src), dst in zip(_reference_params(ref), _app_params(app)):
            dst.copy_(src)


def inference_section(opts: BenchOptions) -> dict:
    """Batch-1 latency of the MFCC CSNN at T=25 (reference and app), median over many runs."""
    import torch

    base = opts.cases()[0]
    case = TrainCase(**{**asdict(base), "batch": 1})
    x, _ = _batch(case, opts.device)
    n = 10 if opts.quick else 100
    result = {"case": f"{case.label.split(',')[0]}, B=1, T={case.steps}"}
    for path in ("reference", "app", "prototype"):
        torch.manual_seed(0)
        _model, _step, infer = _build_path(path, case, opts.device)
        for _ in range(3):
            infer(x)
        times = []
        for _ in range(n):
            _sync(opts.device)
            t0 = time.perf_counter()
            infer(x)
            _sync(opts.device)
            times.append(time.perf_counter() - t0)
        result[path] = {"median_ms": round(1000 * statistics.median(times), 3), "n": n}
    for path in ("app", "prototype"):
        result[path]["speedup_vs_reference"] = _ratio(
            result["reference"]["median_ms"], result[path]["median_ms"]
        )
    return result


_COLD_MFCC = """
import time
t0 = time.perf_counter()
import numpy as np
from engine.features import FeatureConfig, compute_features
t1 = time.perf_counter()
cfg = FeatureConfig()
y = np.random.default_rng(0).standard_normal(cfg.n_samples()).astype(np.float32)
f = compute_features(y, cfg)
t2 = time.perf_counter()
print(f"{t1 - t0} {t2 - t1} {f.shape[0]} {f.shape[1]}")
"""

_COLD_LIBROSA = """
import time
t0 = time.perf_counter()
import numpy as np, librosa
t1 = time.perf_counter()
y = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
f = librosa.feature.mfcc(y=y, sr=8000, n_mfcc=20, n_fft=256, hop_length=128, n_mels=40)
t2 = time.perf_counter()
print(f"{t1 - t0} {t2 - t1} {f.shape[0]} {f.shape[1]}")
"""


def _cold(code: str, timeout_s: float) -> dict:
    t0 = time.perf_counter()
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {timeout_s:g} s"}
    total = time.perf_counter() - t0
    if out.returncode != 0:
        return {"status": NOT_AVAILABLE, "reason": (out.stderr.strip().splitlines() or ["?"])[-1]}
    imp, call, f, t = out.stdout.split()
    return {
        "status": "ok",
        "process_total_s": round(total, 3),
        "import_s": round(float(imp), 3),
        "first_call_s": round(float(call), 4),
        "shape": [int(f), int(t)],
    }


def features_section(opts: BenchOptions) -> dict:
    """Cold first MFCC in a fresh process; MFCC clips/s of engine.features against librosa."""
    import numpy as np

    try:
        from engine.features import FeatureConfig, compute_features
    except ImportError:
        return {"status": NOT_AVAILABLE, "reason": "engine.features is missing"}
    result = {"cold_first_mfcc": _cold(_COLD_MFCC, opts.timeout_s)}
    if not opts.quick:
        result["cold_first_mfcc_librosa"] = _cold(_COLD_LIBROSA, opts.timeout_s)
    configs = {
        "fsdd_8k_1s": FeatureConfig(),
        "report_22k_5s": FeatureConfig(
            sample_rate=22050, duration=5.0, n_fft=2048, hop_length=512, n_mels=128
        ),
    }
    n = 8 if opts.quick else 100
    rng = np.random.default_rng(0)
    for key, cfg in configs.items():
        clips = rng.standard_normal((n, cfg.n_samples())).astype(np.float32)
        compute_features(clips[0], cfg)
        t0 = time.perf_counter()
        for c in clips:
            compute_features(c, cfg)
        ours = n / (time.perf_counter() - t0)
        row = {"shape": list(cfg.shape()), "engine_clips_per_s": round(ours, 1)}
        try:
            import librosa
        except ImportError:
            row["librosa_clips_per_s"] = NOT_AVAILABLE
        else:
            kw = dict(
                sr=cfg.sample_rate,
                n_mfcc=cfg.n_mfcc,
                n_fft=cfg.n_fft,
                hop_length=cfg.hop_length,
                n_mels=cfg.n_mels,
            )
            librosa.feature.mfcc(y=clips[0], **kw)
            t0 = time.perf_counter()
            for c in clips:
                librosa.feature.mfcc(y=c, **kw)
            theirs = n / (time.perf_counter() - t0)
            row["librosa_clips_per_s"] = round(theirs, 1)
            row["speedup_vs_librosa"] = _ratio(ours, theirs)
        result[key] = row
    return result


def live_latency_section(opts: BenchOptions) -> dict:
    """Hook: the Live tab's window-end-to-prediction latency (``engine.live_bench``)."""
    try:
        from engine.live_bench import live_latency
    except ImportError:
        return {"status": NOT_AVAILABLE, "reason": "engine.live_bench is missing"}
    return live_latency(n=10 if opts.quick else 100)


def ui_stall_section(opts: BenchOptions) -> dict:
    """Hook: UI-thread timer lateness while the Training tab trains (``app.ui_bench``).

    Runs as ``python -m app.ui_bench --json`` in a subprocess: the engine never imports Qt.
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


FSDD_SPEC = "fsdd:../shared/data/fsdd/recordings"
REFERENCE_RECIPE = {"steps": 25, "batch": 32, "lr": 1e-3, "epochs": 15}
APP_RECIPE = {"steps": 10, "epochs": 15}  # the rest: RunConfig's defaults (the app's best)


def _test_accuracy(model, forward, x, y, batch: int = 256) -> float:
    import torch

    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = forward(model, x[i : i + batch])
            correct += int((out.argmax(1) == y[i : i + batch]).sum())
    return correct / max(len(x), 1)


def _reference_curve(fs, recipe: dict, target: float, limit_s: float) -> dict:
    """Train the reference (snnTorch loop, Adam, CE on counts) on a FeatureSet; test accuracy
    after every epoch against the training wall time (evaluation not counted)."""
    import numpy as np
    import torch

    from engine.bench_reference import ReferenceCSNN, reference_train_step

    torch.manual_seed(0)
    x = torch.from_numpy(np.asarray(fs.x, dtype=np.float32))
    y = torch.from_numpy(np.asarray(fs.y, dtype=np.int64))
    train, test = fs.splits["train"], fs.splits["test"]
    model = ReferenceCSNN(tuple(x.shape[1:]), len(fs.class_names), steps=recipe["steps"])
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    g = torch.Generator().manual_seed(0)
    curve, wall = [], 0.0
    for epoch in range(recipe["epochs"]):
        t0 = time.perf_counter()
        order = train[torch.randperm(len(train), generator=g).numpy()]
        model.train()
        for i in range(0, len(order), recipe["batch"]):
            idx = order[i : i + recipe["batch"]]
            reference_train_step(model, opt, x[idx], y[idx])
        wall += time.perf_counter() - t0
        model.eval()
        acc = _test_accuracy(model, lambda m, v: m(v)[0].sum(0), x[test], y[test])
        curve.append({"epoch": epoch + 1, "wall_s": round(wall, 2), "test_acc": round(acc, 4)})
        if acc >= target or wall > limit_s:
            break
    return {"recipe": recipe, "curve": curve}


def _app_curve(spec: str, fs, recipe: dict, target: float, limit_s: float) -> dict:
    """Train with ``engine.training.train`` (the app's own loop) and test every epoch's
    checkpoint; the wall time counts only the time spent inside the training generator."""
    import tempfile

    import numpy as np
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.config import RunConfig
    from engine.models import class_scores, run_model
    from engine.train_events import Checkpointed, RunFinished

    cfg = RunConfig(data=spec, **recipe)
    x = torch.from_numpy(np.asarray(fs.x, dtype=np.float32))
    y = torch.from_numpy(np.asarray(fs.y, dtype=np.int64))
    test = fs.splits["test"]
    curve, wall = [], 0.0
    with tempfile.TemporaryDirectory() as run_dir:
        gen = engine_train(cfg, run_dir, data=fs)
        while True:
            t0 = time.perf_counter()
            try:
                ev = next(gen)
            except StopIteration:
                break
            wall += time.perf_counter() - t0
            if isinstance(ev, Checkpointed) and ev.reason == "epoch":
                model = load_checkpoint(ev.path).build()

                def forward(m, v):
                    out = run_model(m, v, cfg.steps, cfg.encoder, cfg.encoder_options)
                    return class_scores(out, cfg.loss, cfg.predict)[1]

                acc = _test_accuracy(model, forward, x[test], y[test])
                curve.append(
                    {"epoch": ev.epoch, "wall_s": round(wall, 2), "test_acc": round(acc, 4)}
                )
                if acc >= target or wall > limit_s:
                    gen.close()
                    break
            if isinstance(ev, RunFinished):
                break
    return {"recipe": cfg.to_dict(), "curve": curve}


def engine_train(cfg, run_dir, data=None):
    from engine.training import train

    return train(cfg, run_dir, data=data)


def time_to_accuracy(
    spec: str = FSDD_SPEC,
    *,
    target: float = 0.97,
    reference_recipe: dict | None = None,
    app_recipe: dict | None = None,
    quick: bool = False,
    limit_s: float = 3600.0,
) -> dict:
    """FSDD test accuracy against training wall time, reference recipe vs the app's.

    Each recipe trains until its test accuracy reaches ``target`` (or its epochs or ``limit_s``
    run out); the test accuracy is taken after every epoch, outside the clock. Heavy (minutes on
    two cores): not part of the default bench or of CI.
    """
    from engine.features import FeatureConfig, load_feature_set

    ref = dict(REFERENCE_RECIPE, **(reference_recipe or {}))
    app = dict(APP_RECIPE, **(app_recipe or {}))
    if "amp" not in app and cpu_has_bf16():
        app["amp"] = "bf16"
    if quick:
        ref["epochs"] = app["epochs"] = 1
    fs = load_feature_set(spec, FeatureConfig())
    if quick:
        import numpy as np

        rng = np.random.default_rng(0)
        fs_splits = {
            k: np.sort(rng.permutation(v)[: max(1, len(v) // 10)]) for k, v in fs.splits.items()
        }
        from dataclasses import replace

        fs = replace(fs, splits=fs_splits)
    r = _reference_curve(fs, ref, target, limit_s)
    a = _app_curve(spec, fs, app, target, limit_s)

    def first_reach(curve):
        return next((p["wall_s"] for p in curve if p["test_acc"] >= target), None)

    t_ref, t_app = first_reach(r["curve"]), first_reach(a["curve"])
    return {
        "data": spec,
        "target": target,
        "reference": {**r, "time_to_target_s": t_ref},
        "app": {**a, "time_to_target_s": t_app},
        "speedup_to_target": _ratio(t_ref, t_app),
        "best_test_acc": {
            "reference": max((p["test_acc"] for p in r["curve"]), default=None),
            "app": max((p["test_acc"] for p in a["curve"]), default=None),
        },
    }


def time_to_accuracy_section(opts: BenchOptions) -> dict:
    """FSDD test accuracy against wall time: reference recipe vs the app's best (heavy)."""
    return time_to_accuracy(quick=opts.quick)


@dataclass(frozen=True)
class Section:
    """One part of the bench: ``module:function`` taking BenchOptions, returning a dict."""

    name: str
    target: str
    default: bool = True
    description: str = ""

    def resolve(self) -> Callable[[BenchOptions], dict] | None:
        module, _, func = self.target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return None
        return getattr(mod, func, None)


SECTIONS = (
    Section("train_step", "engine.bench:train_step_section", True, "training step time/memory"),
    Section("equivalence", "engine.bench:equivalence_section", True, "app == reference?"),
    Section("inference", "engine.bench:inference_section", True, "batch-1 latency"),
    Section("features", "engine.bench:features_section", True, "cold MFCC, clips/s"),
    Section("live_latency", "engine.bench:live_latency_section", True, "Live tab latency"),
    Section("ui_stall", "engine.bench:ui_stall_section", True, "Training tab UI stall"),
    Section(
        "time_to_accuracy",
        "engine.bench:time_to_accuracy_section",
        False,
        "FSDD accuracy vs wall time (minutes; not run by default)",
    ),
)


@dataclass(frozen=True)
class SectionResult:
    name: str
    status: str  # "ok", "not available", "error"
    seconds: float
    result: dict = field(default_factory=dict)


def run_section(section: Section, opts: BenchOptions) -> SectionResult:
    fn = section.resolve()
    if fn is None:
        return SectionResult(section.name, NOT_AVAILABLE, 0.0, {"reason": section.target})
    t0 = time.perf_counter()
    try:
        result = fn(opts)
    except ImportError as exc:
        return SectionResult(section.name, NOT_AVAILABLE, 0.0, {"reason": str(exc)})
    except Exception as exc:  # noqa: BLE001 - one failing section must not hide the others
        return SectionResult(
            section.name,
            "error",
            time.perf_counter() - t0,
            {"reason": f"{type(exc).__name__}: {exc}"},
        )
    status = result.get("status", "ok") if isinstance(result, dict) else "ok"
    return SectionResult(section.name, status, round(time.perf_counter() - t0, 2), result)


def run_bench(opts: BenchOptions, sections=SECTIONS, progress: Callable[[str], None] | None = None):
    """Run the chosen sections in order; returns a JSON-safe dict."""
    chosen = [
        s for s in sections if (s.name in opts.sections if opts.sections is not None else s.default)
    ]
    if opts.sections is not None:
        unknown = sorted(set(opts.sections) - {s.name for s in sections})
        if unknown:
            from engine.errors import ConfigError

            names = ", ".join(s.name for s in sections)
            raise ConfigError(f"bench sections: {', '.join(unknown)} unknown; choose from {names}")
    out = {"machine": machine_info(), "options": asdict(opts), "sections": {}}
    for s in chosen:
        if progress:
            progress(s.name)
        r = run_section(s, opts)
        out["sections"][s.name] = {"status": r.status, "seconds": r.seconds, **r.result}
    try:
        out["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.bench [--quick] [--sections A,B] [--paths A,B] [--device D] [--out F]``
    prints the JSON result (``snn-explorer bench`` is the same with a readable table)."""
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        print(json.dumps(train_worker(json.loads(argv[1]))))
        return 0
    p = argparse.ArgumentParser(prog="python -m engine.bench")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--sections")
    p.add_argument("--paths")
    p.add_argument("--device", default="cpu")
    p.add_argument("--reps", type=int)
    p.add_argument("--out", help="also write the JSON to this file")
    args = p.parse_args(argv)
    from dataclasses import replace

    opts = quick_options() if args.quick else BenchOptions()
    opts = replace(
        opts,
        device=args.device,
        sections=tuple(args.sections.split(",")) if args.sections else None,
        paths=tuple(args.paths.split(",")) if args.paths else opts.paths,
        reps=args.reps or opts.reps,
    )
    text = json.dumps(run_bench(opts, progress=lambda n: print(n, file=sys.stderr)), indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
