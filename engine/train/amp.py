"""Mixed precision: what ``amp = "auto"`` means on this machine, and the autocast context.

``auto`` is bf16 autocast where it is fast and costs no accuracy: on CUDA GPUs that support bf16,
and on CPUs with native bf16 instructions (AVX512-BF16 or AMX, :func:`engine.device.cpu_has_bf16`).
Elsewhere it is off: a CPU without them emulates bf16 and is slower than float32. Under autocast
the convolutions and linear layers compute in bf16; the LIF membranes, the batch-norm statistics
and the optimiser stay float32 (``engine.neuro``'s kernels take float32 currents). Only training
steps autocast: validation and test run in float32, as ``classify``, the Live tab and the exports
run the weights, so the accuracy a run reports is the one they get.

The evidence for the CPU default is ``scripts/amp_accuracy.py`` (FSDD and MNIST, three seeds,
fp32 against bf16: the table is in docs/gpu-and-distributed.md) and ``snn-explorer bench``'s
``train_step`` section, whose ``default_path`` names the path ``auto`` takes here.
"""

from __future__ import annotations

from contextlib import nullcontext


def resolve_amp(mode: str, device_type: str, cpu_bf16: bool | None = None) -> str:
    """``off``, ``bf16`` or ``fp16`` for a config's ``amp`` on a device type (``cpu``/``cuda``).

    ``cpu_bf16``: whether the CPU has native bf16 (None: ask :func:`engine.device.cpu_has_bf16`).
    """
    if mode != "auto":
        return mode
    if device_type == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "off"
    if device_type == "cpu":
        if cpu_bf16 is None:
            from engine.device import cpu_has_bf16

            cpu_bf16 = cpu_has_bf16()
        return "bf16" if cpu_bf16 else "off"
    return "off"


def describe_amp(mode: str, resolved: str) -> str:
    """A log line's words, e.g. ``bf16 autocast (amp auto)``."""
    words = "float32" if resolved == "off" else f"{resolved} autocast"
    return f"{words} (amp {mode})" if mode == "auto" else words


def amp_context(resolved: str, device_type: str):
    """A factory of autocast contexts for a resolved mode, and the fp16 gradient scaler."""
    import torch

    if resolved == "off":
        return nullcontext, None
    dtype = torch.bfloat16 if resolved == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device_type) if resolved == "fp16" else None
    return (lambda: torch.autocast(device_type, dtype=dtype)), scaler
