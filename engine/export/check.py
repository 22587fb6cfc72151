"""Read an exported file back and compare it with the model it came from (see engine.export.job)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.errors import ExportError

ONNX_TOLERANCE = 1e-4
TORCHSCRIPT_TOLERANCE = 1e-5


@dataclass(frozen=True)
class ExportCheck:
    """One comparison of the written file with the model.

    ``required`` checks decide :attr:`ExportResult.ok`; the others (snnTorch's import) inform.
    ``mismatched`` counts inputs whose output differs (spike counts, or logits beyond the
    tolerance); ``max_abs_diff`` is the largest output difference (spike counts or logits).
    """

    name: str
    passed: bool
    n_inputs: int
    mismatched: int
    max_abs_diff: float
    detail: str
    required: bool = True


def encoded_input(model, x: torch.Tensor, cfg: dict) -> torch.Tensor:
    """The spiking model's input sequence ``[T, B, C, H, W]`` as the Predictor builds it.

    "direct": the scaled input repeated at every step; the spike encoders: their spikes of the
    scaled input (rate spikes drawn from a generator seeded with the run's seed).
    """
    steps = int(cfg.get("steps", 25))
    encoder = cfg.get("encoder", "direct")
    with torch.no_grad():
        scaled = model.input_norm(x)
        if encoder == "direct":
            return scaled.unsqueeze(0).expand(steps, *scaled.shape)
        from engine.neuro.encoders import encode

        params = dict(cfg.get("encoder_options") or {})
        if encoder == "rate":
            params["seed_or_generator"] = torch.Generator().manual_seed(int(cfg.get("seed", 0)))
        return encode(encoder, scaled, steps, **params).to(x.dtype)


def _reference(model, x, x_seq, cfg):
    """The model's own output, run the way the Predictor runs it (record of every layer)."""
    with torch.no_grad():
        if cfg.get("encoder", "direct") == "direct":
            return model(x, steps=int(cfg.get("steps", 25)), record=True)
        return model(x_seq, record=True)


def _count_check(name, ref_spikes, got, required, extra="") -> ExportCheck:
    diff = (ref_spikes.sum(0) - got.sum(0)).abs()
    bad = int((diff.sum(1) > 0).sum())
    n = int(ref_spikes.shape[1])
    if bad:
        same_pred = int((ref_spikes.sum(0).argmax(1) == got.sum(0).argmax(1)).sum())
        detail = (
            f"output spike counts differ on {bad}/{n} inputs (by up to {int(diff.max())} "
            f"spikes); the most active class agrees on {same_pred}/{n}"
        )
    else:
        detail = f"output spike counts identical on {n}/{n} inputs"
    return ExportCheck(name, bad == 0, n, bad, float(diff.max()), detail + extra, required)


def check_nir(path, model, ckpt, x) -> tuple[list[ExportCheck], list[str]]:
    from engine.export.nir import layer_node_names
    from engine.export.nir_run import read_nir, simulate_nir, snntorch_run

    cfg = ckpt.config
    graph = read_nir(path)
    x_seq = encoded_input(model, x, cfg)
    ref = _reference(model, x, x_seq, cfg)
    run = simulate_nir(graph, x_seq)
    names = layer_node_names(model)
    same = [k for k, node in names.items() if torch.equal(ref.record[k][0], run.spikes[node])]
    layers = f"; spike trains identical in {len(same)}/{len(names)} layers"
    approx = any(getattr(m, "reset", None) == "subtract" for m in model.modules())
    notes = []
    if approx:
        notes.append("reset by subtraction was written as reset to zero: an approximation")
    checks = [
        _count_check(
            "NIR file (nir.read + step simulator)", ref.spikes, run.output, not approx, layers
        )
    ]
    try:
        got = snntorch_run(graph, x_seq)
    except ExportError as exc:
        notes.append(f"snnTorch's NIR import not run: {exc}")
    except Exception as exc:  # noqa: BLE001 - a third-party importer's failure is information
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        checks.append(
            ExportCheck(
                "snnTorch import_from_nir",
                False,
                0,
                0,
                float("nan"),
                f"failed: {line}",
                required=False,
            )
        )
    else:
        hint = ""
        euler = _meta_str(graph, "discretisation") == "euler"
        if checks[0].passed and not euler and (got.sum(0) != ref.spikes.sum(0)).any():
            hint = " (snnTorch integrates with Euler: export with discretisation euler for it)"
        checks.append(_count_check("snnTorch import_from_nir", ref.spikes, got, False, hint))
    return checks, notes


def _meta_str(graph, key: str) -> str:
    value = (graph.metadata or {}).get(key, "")
    return value.decode() if isinstance(value, bytes) else str(value)


def check_torchscript(path, model, ckpt, x) -> tuple[list[ExportCheck], list[str]]:
    from engine.export.torch_formats import load_torchscript
    from engine.models.registry import is_spiking

    module, meta = load_torchscript(path)
    n = int(x.shape[0])
    notes = [] if meta.get("class_names") else ["the file holds no snn_explorer.json metadata"]
    with torch.no_grad():
        if is_spiking(model):
            cfg = ckpt.config
            x_seq = encoded_input(model, x, cfg)
            ref = _reference(model, x, x_seq, cfg)
            spk, mem = module(x if cfg.get("encoder", "direct") == "direct" else x_seq)
            trains = torch.equal(spk, ref.spikes)
            mem_diff = float((mem - ref.mem).abs().max())
            check = _count_check("TorchScript (reloaded)", ref.spikes, spk, True)
            ok = check.passed and trains and mem_diff <= TORCHSCRIPT_TOLERANCE
            detail = (
                f"{check.detail}; spike trains {'identical' if trains else 'DIFFER'}; "
                f"membranes within {mem_diff:.2g}"
            )
            return [
                ExportCheck(check.name, ok, n, check.mismatched, check.max_abs_diff, detail)
            ], notes
        ref = model(x)
        got = module(x)
    return [_logit_check("TorchScript (reloaded)", ref, got, TORCHSCRIPT_TOLERANCE)], notes


def _logit_check(name, ref: torch.Tensor, got, tol: float) -> ExportCheck:
    ref = ref.detach().double().numpy()
    got = np.asarray(got.detach() if isinstance(got, torch.Tensor) else got, dtype=np.float64)
    diff = np.abs(ref - got)
    bad = int((diff.max(axis=1) > tol).sum())
    same = int((ref.argmax(1) == got.argmax(1)).sum())
    n = len(ref)
    detail = (
        f"logits within {diff.max():.2g} of the model's (tolerance {tol:g}) on {n - bad}/{n} "
        f"inputs; same predicted class on {same}/{n}"
    )
    return ExportCheck(name, bad == 0, n, bad, float(diff.max()), detail)


def check_onnx(path, model, ckpt, x) -> tuple[list[ExportCheck], list[str]]:
    from engine.export.torch_formats import run_onnx

    got, meta = run_onnx(path, x.numpy())
    with torch.no_grad():
        ref = model(x)
    notes = [] if "class_names" in meta else ["the file holds no class names"]
    return [_logit_check("ONNX (onnxruntime)", ref, got, ONNX_TOLERANCE)], notes


def check_file(fmt: str, path, model, ckpt, x: torch.Tensor):
    """``(checks, notes)`` comparing the file at ``path`` with ``model`` on inputs ``x``."""
    fn = {"nir": check_nir, "onnx": check_onnx, "torchscript": check_torchscript}[fmt]
    return fn(path, model.eval(), ckpt, x)
