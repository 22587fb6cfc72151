"""Export a trained checkpoint as NIR, ONNX or TorchScript, and check the file it wrote.

``export_job`` is the Qt-free generator that ``snn-explorer export`` and the Training tab's
"Export model..." menu both drive: it loads the checkpoint, writes the file (atomically), reads
it back and runs it on real inputs beside the original model:

- **nir** (spiking models): the file read back with ``nir.read`` and run by
  :func:`engine.export.nir_run.simulate_nir` must give the model's spike counts on every input;
  snnTorch's own NIR import is run too when nirtorch is installed (for information: it
  integrates with forward Euler, so it matches files written with ``discretisation="euler"``).
- **onnx** (ANNs): onnxruntime's logits within 1e-4 of the model's.
- **torchscript** (every model): the reloaded module's output equals the model's (spikes bit
  for bit; logits within 1e-5).

Check inputs are test examples of the checkpoint's own data set (features computed with the
stored feature settings); when that data set cannot be read, seeded random inputs at the
model's input scale are used and the result says so.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.atomic import atomic_path
from engine.errors import ExportError, SnnError
from engine.export.check import ExportCheck, check_file
from engine.export.nir import DEFAULT_DT, DISCRETISATIONS

FORMATS = ("nir", "onnx", "torchscript")
SUFFIXES = {"nir": ".nir", "onnx": ".onnx", "torchscript": ".torchscript.pt"}
CHECK_EXAMPLES = 32

__all__ = [
    "CHECK_EXAMPLES",
    "DEFAULT_DT",
    "DISCRETISATIONS",
    "FORMATS",
    "ExportCheck",
    "ExportError",
    "ExportProgress",
    "ExportResult",
    "available_formats",
    "check_inputs",
    "default_export_path",
    "export_checkpoint",
    "export_job",
]


@dataclass(frozen=True)
class ExportProgress:
    """One stage of an export: ``done`` of ``total`` stages, with a line for a status bar."""

    stage: str
    message: str
    done: int
    total: int


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how it compared with the model."""

    path: str
    format: str
    model: str
    size_bytes: int
    inputs: str
    checks: tuple[ExportCheck, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks if c.required)

    def summary(self) -> str:
        """A few lines for a person (the CLI prints them; the GUI shows them)."""
        lines = [
            f"wrote {self.path} ({self.format}, model {self.model}, {self.size_bytes:,} bytes)"
        ]
        if self.checks:
            lines.append(f"checked on {self.inputs}:")
        for c in self.checks:
            mark = "ok  " if c.passed else ("FAIL" if c.required else "note")
            lines.append(f"  {mark} {c.name}: {c.detail}")
        lines += [f"  note {n}" for n in self.notes]
        return "\n".join(lines)


def default_export_path(checkpoint: str | os.PathLike, fmt: str) -> Path:
    """``RUN_DIR/best.nir`` for ``RUN_DIR/best.pt`` and ``nir`` (and so on)."""
    _check_format(fmt)
    p = Path(checkpoint)
    return p.with_name(p.stem + SUFFIXES[fmt])


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"format: {fmt!r} is unknown; choose one of {', '.join(FORMATS)}")


def _load(checkpoint):
    from engine.train.checkpoint import Checkpoint, load_checkpoint

    return checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)


def available_formats(checkpoint) -> dict[str, str | None]:
    """``{format: None}`` where a checkpoint's model can be exported, else the one-line reason.

    Cheap (no file is written): the GUI uses it to enable the "Export model..." entries.
    """
    from engine.export.nir import model_to_nir
    from engine.models.registry import is_spiking

    ckpt = _load(checkpoint)
    out: dict[str, str | None] = {"torchscript": None}
    if is_spiking(str(ckpt.model.get("name"))):
        out["onnx"] = "ONNX export is for the ANN models; use nir or torchscript"
        try:  # the spiking models are small: building one is quick
            model_to_nir(ckpt.build("cpu"), tuple(ckpt.model["input_shape"]))
            out["nir"] = None
        except ExportError as exc:
            out["nir"] = str(exc)
    else:
        out["onnx"] = None
        out["nir"] = f"model {ckpt.model['name']} is not spiking; NIR describes spiking models"
    return {k: out[k] for k in FORMATS}


# ----------------------------------------------------------------------------- check inputs
def check_inputs(checkpoint, n: int = CHECK_EXAMPLES) -> tuple[np.ndarray, str]:
    """``(x [n, C, H, W] float32, description)``: test examples of the checkpoint's data set.

    Falls back to seeded random inputs at the model's input scale (the description says why)
    when the data set is absent or unreadable.
    """
    ckpt = _load(checkpoint)
    spec = ckpt.config.get("data") or ""
    if spec:
        try:
            x = _data_inputs(ckpt, spec, n)
            return x, f"{len(x)} test examples of {spec}"
        except SnnError as exc:
            reason = str(exc)
    else:
        reason = "the checkpoint names no data set"
    model = ckpt.build("cpu")
    shape = tuple(ckpt.model["input_shape"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    norm = model.input_norm
    x = x * norm.scale.numpy() + norm.shift.numpy()  # the scale the model was trained on
    return x.astype(np.float32), f"{n} random inputs ({reason})"


def _data_inputs(ckpt, spec: str, n: int) -> np.ndarray:
    from engine.audio.features import FeatureConfig, compute_features, prepare_clip
    from engine.data.specs import open_source, split_indices
    from engine.errors import DataError

    cfg = ckpt.config
    source = open_source(spec)
    splits = split_indices(
        source,
        seed=int(cfg.get("seed", 0)),
        val_fraction=float(cfg.get("val_fraction", 0.1)),
        test_fraction=float(cfg.get("test_fraction", 0.1)),
    )
    idx = next((splits[k] for k in ("test", "val", "train") if len(splits.get(k, ()))), None)
    if idx is None:
        raise DataError(f"{spec}: no examples")
    idx = np.unique(idx[np.linspace(0, len(idx) - 1, min(n, len(idx))).round().astype(int)])
    shape = tuple(ckpt.model["input_shape"])
    fcfg = FeatureConfig.from_dict(ckpt.feature_config) if ckpt.feature_config else None
    rows = []
    for i in idx:
        i = int(i)
        if source.kind == "image":
            a = np.asarray(source.load(i), dtype=np.float32)
        else:
            if fcfg is None:
                raise DataError("the checkpoint stores no feature settings")
            y = prepare_clip(source.load(i), source.sample_rate(i), fcfg)
            a = compute_features(y, fcfg)
        a = a.reshape(shape) if a.size == math.prod(shape) else a
        if tuple(a.shape) != shape:
            raise DataError(f"{spec}: features of shape {a.shape}; the model takes {shape}")
        rows.append(a)
    return np.stack(rows).astype(np.float32)


# ----------------------------------------------------------------------------- the job
def _metadata(ckpt) -> dict:
    from engine import __version__

    cfg = ckpt.config
    history = (ckpt.metrics or {}).get("history") or []
    return {
        "generator": f"snn-explorer {__version__}",
        "model": ckpt.model["name"],
        "model_options": ckpt.model.get("options", {}),
        "input_shape": list(ckpt.model["input_shape"]),
        "class_names": list(ckpt.class_names),
        "feature_config": ckpt.feature_config,
        "steps": int(cfg.get("steps", 25)),
        "encoder": cfg.get("encoder", "direct"),
        "encoder_options": cfg.get("encoder_options", {}),
        "loss": cfg.get("loss", "ce_count"),
        "predict": cfg.get("predict", "count"),
        "checkpoint": os.path.basename(ckpt.path),
        "checkpoint_version": ckpt.version,
        "epochs_trained": len(history),
    }


def export_job(
    checkpoint,
    fmt: str,
    out: str | os.PathLike,
    *,
    check: bool = True,
    n_check: int = CHECK_EXAMPLES,
    inputs: np.ndarray | None = None,
    dt: float = DEFAULT_DT,
    discretisation: str = "exact",
    reset_as_zero: bool = False,
    stop: threading.Event | None = None,
) -> Generator[ExportProgress, None, ExportResult | None]:
    """Export ``checkpoint`` (a path or a loaded Checkpoint) as ``fmt`` to ``out``.

    Parameters
    ----------
    check : read the file back and compare it with the model on ``inputs`` (default: up to
        ``n_check`` test examples of the checkpoint's data set, see :func:`check_inputs`).
    dt, discretisation, reset_as_zero : NIR only; see :mod:`engine.export.nir`.
    stop : set it to stop between stages; the job then returns None and leaves no file.

    Raises
    ------
    ExportError
        One line: a model the format cannot express (naming the layer), or a failed write.
    """
    from engine.export.nir import model_to_nir

    _check_format(fmt)
    stop = stop or threading.Event()
    out = Path(out)
    total = 4 if check else 2
    yield ExportProgress("load", f"loading {checkpoint}", 0, total)
    ckpt = _load(checkpoint)
    if out.is_dir():
        out = out / default_export_path(ckpt.path, fmt).name
    if not out.parent.is_dir():
        raise ExportError(f"{out.parent}: no such folder for the exported file")
    model = ckpt.build("cpu")
    shape = tuple(int(v) for v in ckpt.model["input_shape"])
    meta = _metadata(ckpt)
    if fmt == "nir":
        graph = model_to_nir(
            model,
            shape,
            dt=dt,
            discretisation=discretisation,
            reset_as_zero=reset_as_zero,
            metadata=meta,
        )
    elif fmt == "onnx":
        from engine.models.registry import is_spiking

        if is_spiking(model):
            raise ExportError(
                f"model {ckpt.model['name']}: ONNX export is for the ANN models; export a "
                "spiking model as nir or torchscript"
            )
    if stop.is_set():
        return None
    if check:
        yield ExportProgress("inputs", "reading check inputs", 1, total)
        if inputs is None:
            x, described = check_inputs(ckpt, n_check)
        else:
            x = np.asarray(inputs, dtype=np.float32)
            described = f"{len(x)} given inputs"
        if stop.is_set():
            return None
    yield ExportProgress("write", f"writing {out.name}", total - 2, total)
    try:
        example = torch.from_numpy(x[:2]) if check else torch.zeros(2, *shape)
        with atomic_path(out) as tmp:
            _write(fmt, model, graph if fmt == "nir" else None, example, tmp, meta, ckpt)
    except OSError as exc:
        raise ExportError(f"{out}: cannot write ({exc.strerror or exc})") from None
    checks: tuple[ExportCheck, ...] = ()
    notes: tuple[str, ...] = ()
    if check:
        if stop.is_set():
            out.unlink(missing_ok=True)
            return None
        yield ExportProgress("check", f"checking {out.name} on {described}", total - 1, total)

        checks, notes = check_file(fmt, out, model, ckpt, torch.from_numpy(x))
    yield ExportProgress("done", f"exported {out.name}", total, total)
    return ExportResult(
        path=str(out),
        format=fmt,
        model=ckpt.model["name"],
        size_bytes=out.stat().st_size,
        inputs=described if check else "",
        checks=tuple(checks),
        notes=tuple(notes),
    )


def _write(fmt, model, graph, example, path: Path, meta: dict, ckpt) -> None:
    from engine.export.torch_formats import export_onnx, save_torchscript, to_torchscript

    if fmt == "nir":
        from engine.export.nir import nir_module

        nir_module().write(str(path), graph)
    elif fmt == "onnx":
        export_onnx(model, example, path, meta)
    else:
        module = to_torchscript(model, example, steps=meta["steps"], encoder=meta["encoder"])
        save_torchscript(module, path, json.loads(json.dumps(meta)))


def export_checkpoint(checkpoint, fmt: str, out: str | os.PathLike, **options) -> ExportResult:
    """Run :func:`export_job` to its end (same options); returns its ExportResult."""
    gen = export_job(checkpoint, fmt, out, **options)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            if done.value is None:
                raise ExportError("export was stopped") from None
            return done.value
