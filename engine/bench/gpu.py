"""The CUDA and Open Neuromorphic sections of ``snn-explorer bench``.

``cuda`` (needs a CUDA device, else "not available")
    The report's CSNN training step at T=25 and T=50 for snnTorch's loop and the app's path
    (fused LIF: Triton kernels on CUDA, :mod:`engine.neuro.lif_triton`), each in a fresh process
    (:func:`engine.bench.train_step.run_worker`): median step time, the speed-up, and the ratio
    of ``torch.cuda.max_memory_allocated`` increases; then batch-1 inference latency.
``open_neuromorphic``
    The Open Neuromorphic SNN-library benchmark's case: one ``Linear(16384, 16384)`` + LIF layer,
    batch 16, T=500, forward and backward of ``spikes.sum()``, on the CPU (T=500 in the full run,
    T=5 in ``--quick``) and on CUDA when present; for snnTorch's ``Leaky`` in a Python loop, the
    torch loop of :mod:`engine.neuro.lif` and the app's default LIF path.

Each case names ``default_path``: the LIF path ``engine.train`` takes by default on this
machine for that device ("numba", "triton" or "torch").
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import asdict, replace

from engine.bench.train_step import NOT_AVAILABLE, TRAIN_CASES, run_worker

ON_NEURONS = 16_384
ON_BATCH = 16


def default_lif_path(device) -> str:
    """The LIF implementation ``engine.neuro.lif`` picks by default for float32 on ``device``."""
    import torch

    from engine.neuro.lif import lif_path

    return lif_path(torch.zeros(2, 1, 4, device=device))


def _cuda_ready() -> bool:
    import torch

    return torch.cuda.is_available()


def cuda_section(opts) -> dict:
    """Training step and inference on CUDA: app against snnTorch (see the module docstring)."""
    if not _cuda_ready():
        return {"status": NOT_AVAILABLE, "reason": "no CUDA device on this machine"}
    from engine.bench.suite import inference_section

    out = {"default_path": default_lif_path("cuda")}
    cases = [c for c in TRAIN_CASES if c.key in ("mfcc_T25", "mfcc_T50")]
    if opts.quick:
        cases = cases[:1]
    for case in cases:
        row = {"label": case.label}
        for path in ("reference", "app", "app_bf16"):
            spec = {
                "case": asdict(case),
                "path": path,
                "device": "cuda",
                "warmup": opts.warmup,
                "reps": opts.reps,
            }
            row[path] = run_worker(spec, opts.timeout_s)
        ref = row["reference"]
        for path in ("app", "app_bf16"):
            r = row[path]
            if r.get("status") == "ok" and ref.get("status") == "ok":
                r["speedup_vs_reference"] = round(ref["median_s"] / r["median_s"], 3)
                if ref["peak_increase_mib"]:
                    r["max_memory_allocated_ratio"] = round(
                        r["peak_increase_mib"] / ref["peak_increase_mib"], 3
                    )
        out[case.key] = row
    out["inference_batch1"] = inference_section(replace(opts, device="cuda"))
    return out


def on_step(path: str, steps: int, device, neurons: int = ON_NEURONS, batch: int = ON_BATCH):
    """One forward + backward of the Open Neuromorphic layer; returns the timed closure."""
    import torch

    from engine.neuro.lif import lif_sequence

    g = torch.Generator().manual_seed(0)
    fc = torch.nn.Linear(neurons, neurons).to(device)
    x = (torch.rand(steps, batch, neurons, generator=g) < 0.05).float().to(device)
    if path == "snntorch":
        import snntorch as snn

        lif = snn.Leaky(beta=0.9)

        def run():
            mem = lif.init_leaky()
            spikes = []
            cur = fc(x)  # the layer over all steps at once, as the benchmark writes it
            for t in range(steps):
                spk, mem = lif(cur[t], mem)
                spikes.append(spk)
            torch.stack(spikes).sum().backward()

        run.layer = fc
        return run
    backend = "torch" if path == "torch_loop" else "auto"

    def run():
        spk, _ = lif_sequence(fc(x), 0.9, backend=backend)
        spk.sum().backward()

    run.layer = fc  # for tests: the weight gradient of the step
    return run


def time_step(run, device, reps: int) -> dict:
    import torch

    cuda = torch.device(device).type == "cuda"
    run()  # compile / warm up
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    res = {"status": "ok", "median_s": round(statistics.median(times), 4), "reps": reps}
    if cuda:
        res["max_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return res


def open_neuromorphic_section(opts) -> dict:
    """Linear + LIF, 16,384 neurons, batch 16: forward + backward time per path and device."""
    devices = ["cpu"] + (["cuda"] if _cuda_ready() else [])
    out = {"case": f"Linear({ON_NEURONS}) + LIF, batch {ON_BATCH}, forward + backward"}
    for device in devices:
        steps = 5 if opts.quick else 500
        if device == "cuda":
            steps = 50 if opts.quick else 500
        row = {"steps": steps, "default_path": default_lif_path(device)}
        for path in ("snntorch", "torch_loop", "app"):
            try:
                row[path] = time_step(on_step(path, steps, device), device, max(1, opts.reps // 2))
            except (RuntimeError, MemoryError) as exc:  # out of memory on a small machine
                row[path] = {"status": "error", "reason": str(exc).splitlines()[0][:200]}
        ref = row["snntorch"]
        for path in ("torch_loop", "app"):
            if row[path].get("status") == "ok" and ref.get("status") == "ok":
                row[path]["speedup_vs_snntorch"] = round(ref["median_s"] / row[path]["median_s"], 2)
        out[device] = row
    if "cuda" not in out:
        out["cuda"] = {"status": NOT_AVAILABLE, "reason": "no CUDA device on this machine"}
    return out
