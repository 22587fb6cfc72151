"""The ``twins`` section of ``snn-explorer bench``: each spiking audio model's training step
against its non-spiking twin's, in one process, at the shapes the recipe trains on.

Issue 14's cost goal is "the recommended spiking model trains in at most 3x its twin's time". A
fold's wall time mixes the step cost with early stopping and the machine's load, so this section
measures the step itself: both models built by ``engine.models.registry`` for the same input, the
same batch, AdamW, the recipe's loss, alternated step by step (so a busy machine slows both
alike), in float32 and in the precision ``amp = "auto"`` picks here. The figure is the ratio of
median step times (spiking / twin).

Cases: ``scnn_gap`` (at ``engine.train.recipe.SPECTROGRAM_STEPS`` steps) against ``cnn_gap`` on a
Kitchen20-like log-mel crop (1 x 64 x 130, 1.5 s at 22,050 Hz, hop 256), batch 64; the report's
``csnn`` (the default 10 steps) against ``cnn`` on FSDD's MFCCs (1 x 20 x 63), batch 64; ``srnn``
against ``rnn`` on the same MFCCs.
"""

from __future__ import annotations

import statistics
import time
from contextlib import nullcontext


def _cases() -> tuple:
    """(model, input shape, classes, time steps): the steps the recipe and the defaults use."""
    from engine.train.config import RunConfig
    from engine.train.recipe import SPECTROGRAM_STEPS

    steps = RunConfig().steps
    return (
        ("scnn_gap", (1, 64, 130), 20, SPECTROGRAM_STEPS),
        ("csnn", (1, 20, 63), 10, steps),
        ("srnn", (1, 20, 63), 10, steps),
    )


QUICK_CASES = (("scnn_gap", (1, 32, 40), 5, 3), ("csnn", (1, 20, 24), 4, 3))


def _stepper(name: str, shape, n_classes: int, steps: int, batch: int, precision: str):
    import torch

    from engine.models.registry import build_model, loss_value, run_model

    model = build_model(name, shape, n_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *shape, generator=g)
    y = torch.randint(0, n_classes, (batch,), generator=g)

    def ctx():
        if precision == "off":
            return nullcontext()
        return torch.autocast("cpu", dtype=torch.bfloat16)

    def step() -> float:
        model.train()
        t0 = time.perf_counter()
        with ctx():
            out = run_model(model, x, steps, "direct")
            loss = loss_value(out, y, "ce_mem")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    return step


def twin_ratio(
    name: str,
    shape,
    n_classes: int,
    steps: int,
    *,
    batch: int,
    precision: str,
    warmup: int,
    reps: int,
) -> dict:
    """Median step seconds of ``name`` and of its twin, alternated, and their ratio."""
    from engine.models.registry import twin_of

    twin = twin_of(name)
    spiking = _stepper(name, shape, n_classes, steps, batch, precision)
    plain = _stepper(twin, shape, n_classes, steps, batch, precision)
    for _ in range(warmup):
        spiking()
        plain()
    ts, tt = [], []
    for _ in range(reps):
        ts.append(spiking())
        tt.append(plain())
    s, t = statistics.median(ts), statistics.median(tt)
    return {
        "model": name,
        "twin": twin,
        "input_shape": list(shape),
        "batch": batch,
        "steps": steps,
        "precision": "float32" if precision == "off" else precision,
        "spiking_step_s": round(s, 4),
        "twin_step_s": round(t, 4),
        "ratio": round(s / t, 2),
    }


def twins_section(opts) -> dict:
    """``bench --sections twins``: the spiking/twin step-time ratios (see the module docstring)."""
    import torch

    from engine.train.amp import resolve_amp

    if torch.device(opts.device).type != "cpu":
        return {"status": "not available", "reason": "the twins section runs on the CPU"}
    auto = resolve_amp("auto", "cpu")
    precisions = ["off"] + (["bf16"] if auto == "bf16" else [])
    batch = 8 if opts.quick else 64
    out = {"default_precision": "float32" if auto == "off" else auto}
    for name, shape, n_classes, steps in QUICK_CASES if opts.quick else _cases():
        for precision in precisions:
            key = f"{name}_{'fp32' if precision == 'off' else precision}"
            out[key] = twin_ratio(
                name,
                shape,
                n_classes,
                steps,
                batch=batch,
                precision=precision,
                warmup=opts.warmup,
                reps=opts.reps,
            )
    return out
