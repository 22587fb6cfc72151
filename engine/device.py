"""Compute device choice: CUDA when present, else CPU."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError


@dataclass(frozen=True)
class DeviceInfo:
    name: str  # "cuda:0" or "cpu"
    label: str  # human readable, e.g. "NVIDIA H200 (139 GiB)" or "CPU (2 threads)"


def available_devices() -> list[DeviceInfo]:
    """Every device a run can use, best first."""
    import torch

    out = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.append(DeviceInfo(f"cuda:{i}", f"{p.name} ({p.total_memory / 2**30:.0f} GiB)"))
    out.append(DeviceInfo("cpu", f"CPU ({torch.get_num_threads()} threads)"))
    return out


def resolve_device(name: str = "auto"):
    """``auto`` -> CUDA when present else CPU; otherwise a torch device name checked for use."""
    import torch

    if name in ("", "auto", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(
            f"device: {name!r} is not a device name (use auto, cpu or cuda[:N])"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device: {name!r} asked for CUDA but none is available here; use cpu or auto"
        )
    return dev


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
