"""``snn-explorer bench``: speed and memory of training, inference and features, in one run.

Sections (``SECTIONS``, an explicit list; each returns a JSON-safe dict):

``train_step``
    The report's CSNN training step (MFCC 1x20x216, B=32, T=25 and T=50; MNIST 1x28x28, B=128,
    T=25) for the reference (:mod:`engine.bench.reference`: snnTorch ``Leaky`` in a Python loop
    over time, as report Fig. 24 and snnTorch's tutorials write it) and for the app's training
    path (``engine.models.registry.build_model("csnn")`` + the step ``engine.train.loop`` takes: the direct
    input's first block computed once, stateless layers over all ``T x B`` samples, the fused LIF
    of :mod:`engine.neuro.lif`; ``app_bf16`` adds bf16 autocast where the CPU has bf16 instructions).
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
    ``engine.audio.features``), and MFCC clips per second, ``engine.audio.features`` against librosa.
``live_latency``
    The Live tab's latency benchmark (``engine.bench.live_latency.live_latency``). A section whose
    code is absent reports ``"not available"``. The sections that need the window (UI stall,
    soak) live in ``app.bench_sections``; ``snn-explorer bench`` adds them to these.
``cuda``, ``open_neuromorphic`` (not by default), ``distributed`` (not by default)
    CUDA training step and memory against snnTorch, the Open Neuromorphic Linear+LIF case, and
    samples/s of ``train --nproc 1`` and ``2``: :mod:`engine.bench.gpu`,
    :mod:`engine.bench.data_parallel`.
``time_to_accuracy`` (not run by default: minutes of training)
    FSDD test accuracy against wall time for the reference recipe and the app's best recipe.

Run ``python -m engine.bench.suite`` or ``snn-explorer bench [--json] [--quick]``. The training
configurations, paths and subprocess worker live in :mod:`engine.bench.train_step`, the FSDD
time-to-accuracy run in :mod:`engine.bench.time_to_accuracy`.

Over 400 lines: it is the list of sections and their small drivers; the heavy parts of a section
live in their own modules (train_step, reference, time_to_accuracy, live_latency, twins, gpu, data_parallel).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from engine.atomic import write_atomic
from engine.bench.train_step import (  # noqa: F401 - re-exported for callers and tests
    EXTRA_PATHS,
    NOT_AVAILABLE,
    PATHS,
    QUICK_CASES,
    TRAIN_CASES,
    TrainCase,
    app_model,
    app_params,
    bench_batch,
    build_path,
    copy_reference_weights,
    cpu_has_bf16,
    ratio,
    reference_params,
    run_worker,
    sync_device,
    train_step_section,
    train_worker,
)

# --------------------------------------------------------------------------- cases and options


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


# --------------------------------------------------------------------------- sections


def equivalence_section(opts: BenchOptions) -> dict:
    """The app's CSNN with the reference's weights: same spikes, same gradients?"""
    import torch

    from engine.bench.reference import ReferenceCSNN
    from engine.models.registry import run_model

    base = opts.cases()[0]
    case = TrainCase(**{**asdict(base), "batch": 4})
    torch.manual_seed(0)
    ref = ReferenceCSNN(
        case.input_shape, case.n_classes, case.channels, case.kernels, steps=case.steps
    )
    app = app_model(case)
    copy_reference_weights(ref, app)
    x, _ = bench_batch(case, "cpu", seed=1)
    x = x * 2.0  # a stronger current: more spikes in every layer
    spk_r, mem_r = ref(x)
    w = torch.randn(spk_r.shape, generator=torch.Generator().manual_seed(2))
    (spk_r * w).sum().add(mem_r.sum()).backward()
    label = f"{base.label.split(',')[0]}, B={case.batch}, T={case.steps}"
    result = {"case": label, "output_spike_rate": round(float(spk_r.detach().mean()), 4)}
    for name, forward in (("app", lambda m: run_model(m, x, case.steps, "direct")),):
        app.zero_grad(set_to_none=True)
        out = forward(app)
        (out.spikes * w).sum().add(out.mem.sum()).backward()
        grads = {}
        for (pname, p_ref), p_app in zip(reference_params(ref), app_params(app)):
            scale = float(p_ref.grad.abs().max()) or 1.0
            grads[pname] = float((p_ref.grad - p_app.grad).abs().max()) / scale
        result[name] = {
            "spikes_equal": bool(torch.equal(spk_r, out.spikes)),
            "max_membrane_diff": float((mem_r - out.mem).detach().abs().max()),
            "max_grad_diff_rel": max(grads.values()),
            "grad_diff_rel": grads,
        }
    return result


def inference_section(opts: BenchOptions) -> dict:
    """Batch-1 latency of the MFCC CSNN at T=25 (reference and app), median over many runs."""
    import torch

    base = opts.cases()[0]
    case = TrainCase(**{**asdict(base), "batch": 1})
    x, _ = bench_batch(case, opts.device)
    n = 10 if opts.quick else 100
    result = {"case": f"{case.label.split(',')[0]}, B=1, T={case.steps}"}
    paths = ["reference", "app"]
    if torch.device(opts.device).type == "cuda" or cpu_has_bf16():
        paths.append("app_bf16")
    for path in paths:
        torch.manual_seed(0)
        # in this process: leave its allocator alone (batch-1 inference allocates little)
        built = path if path == "reference" else path + "_sysmalloc"
        _model, _step, infer = build_path(built, case, opts.device)
        for _ in range(3):
            infer(x)
        times = []
        for _ in range(n):
            sync_device(opts.device)
            t0 = time.perf_counter()
            infer(x)
            sync_device(opts.device)
            times.append(time.perf_counter() - t0)
        result[path] = {"median_ms": round(1000 * statistics.median(times), 3), "n": n}
    for path in paths[1:]:
        result[path]["speedup_vs_reference"] = ratio(
            result["reference"]["median_ms"], result[path]["median_ms"]
        )
    return result


_COLD_MFCC = """
import time
t0 = time.perf_counter()
import numpy as np
from engine.audio.features import FeatureConfig, compute_features
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
    """Cold first MFCC in a fresh process; MFCC clips/s of engine.audio.features against librosa."""
    import numpy as np

    try:
        from engine.audio.features import FeatureConfig, compute_features
    except ImportError:
        return {"status": NOT_AVAILABLE, "reason": "engine.audio.features is missing"}
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
            row["speedup_vs_librosa"] = ratio(ours, theirs)
        result[key] = row
    return result


def live_latency_section(opts: BenchOptions) -> dict:
    """Hook: the Live tab's window-end-to-prediction latency (``engine.bench.live_latency``)."""
    try:
        from engine.bench.live_latency import live_latency
    except ImportError:
        return {"status": NOT_AVAILABLE, "reason": "engine.bench.live_latency is missing"}
    return live_latency(n=10 if opts.quick else 100)


def time_to_accuracy_section(opts: BenchOptions) -> dict:
    """FSDD test accuracy against wall time: reference recipe vs the app's best (heavy)."""
    return time_to_accuracy(quick=opts.quick)


def time_to_accuracy(*args, **kwargs) -> dict:
    """See :func:`engine.bench.time_to_accuracy.time_to_accuracy` (FSDD, reference vs app; minutes)."""
    from engine.bench.time_to_accuracy import time_to_accuracy as run

    return run(*args, **kwargs)


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
    Section(
        "train_step",
        "engine.bench.train_step:train_step_section",
        True,
        "training step time/memory",
    ),
    Section("equivalence", "engine.bench.suite:equivalence_section", True, "app == reference?"),
    Section("inference", "engine.bench.suite:inference_section", True, "batch-1 latency"),
    Section("features", "engine.bench.suite:features_section", True, "cold MFCC, clips/s"),
    Section("live_latency", "engine.bench.suite:live_latency_section", True, "Live tab latency"),
    Section("cuda", "engine.bench.gpu:cuda_section", True, "CUDA train step/memory vs snnTorch"),
    Section(
        "open_neuromorphic",
        "engine.bench.gpu:open_neuromorphic_section",
        False,
        "Linear+LIF 16k neurons, T=500, B=16 (minutes on a CPU; not run by default)",
    ),
    Section(
        "distributed",
        "engine.bench.data_parallel:distributed_section",
        False,
        "train samples/s in 1 and 2 processes (a minute; not run by default)",
    ),
    Section(
        "twins",
        "engine.bench.twins:twins_section",
        False,
        "spiking audio models' train step vs their twins' (a minute; not run by default)",
    ),
    Section(
        "time_to_accuracy",
        "engine.bench.suite:time_to_accuracy_section",
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
    """``python -m engine.bench.suite [--quick] [--sections A,B] [--paths A,B] [--device D] [--out F]``
    prints the JSON result (``snn-explorer bench`` is the same with a readable table)."""
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        print(json.dumps(train_worker(json.loads(argv[1]))))
        return 0
    p = argparse.ArgumentParser(prog="python -m engine.bench.suite")
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
        write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
