"""What a training run shows and writes: traces of the tracked example, and the run folder's files.

Split from :mod:`engine.train.loop` (which owns the loop and its state).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from engine.atomic import write_atomic
from engine.models.registry import class_scores, run_model
from engine.train.events import LayerTrace, Traces, to_json
from engine.train.run_exports import RunTables
from engine.train.run_folder import EVENTS_FILE, LOG_FILE, METRICS_FILE

log = logging.getLogger("engine.train.loop")

TRACE_NEURONS = 256  # raster rows per layer: what a plot can show
TRACE_MEMBRANES = 4  # membrane traces per layer


def _spread(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).astype(np.int64))


@torch.no_grad()
def trace_example(
    model,
    x1: torch.Tensor,
    label: int,
    index: int,
    cfg,
    generator: torch.Generator,
    trace_ids: dict,
    epoch: int,
) -> Traces:
    """Run one example ``x1 [1, C, H, W]`` with recording on and subsample it for plots.

    ``trace_ids`` maps a layer name to ``(raster neuron ids, membrane neuron ids)``; layers not
    in it get ids now (evenly spread raster rows; the membranes of the neurons nearest to firing)
    and are added, so every epoch shows the same neurons.
    """
    was_training = model.training
    model.eval()
    try:
        out = run_model(
            model, x1, cfg.steps, cfg.encoder, cfg.encoder_options, generator, record=True
        )
        _, decision = class_scores(out, cfg.loss, cfg.predict)
        scaled = model.input_norm(x1)[0, 0].float().cpu().numpy()
    finally:
        model.train(was_training)
    layers = []
    for name in model.layer_names:
        spk, mem = out.record[name]
        spk = spk[:, 0].flatten(1).float().cpu().numpy()
        mem = mem[:, 0].flatten(1).float().cpu().numpy()
        if name not in trace_ids:
            n = spk.shape[1]
            mids = np.sort(np.argsort(-mem.mean(0), kind="stable")[: min(TRACE_MEMBRANES, n)])
            trace_ids[name] = (_spread(n, TRACE_NEURONS), mids)
        ids, mids = trace_ids[name]
        layers.append(
            LayerTrace(
                name=name,
                spikes=spk[:, ids].astype(np.uint8),
                neuron_ids=ids,
                mem=mem[:, mids].astype(np.float32),
                mem_ids=mids,
                total_neurons=int(spk.shape[1]),
                spike_count=int(spk.sum()),
            )
        )
    inp = None
    if "input" in out.record:
        s = out.record["input"][0][:, 0].flatten(1).float().cpu().numpy()
        inp = (s[:, _spread(s.shape[1], TRACE_NEURONS)] != 0).astype(np.uint8)
    return Traces(
        epoch=epoch,
        example_index=int(index),
        label=int(label),
        predicted=int(decision.argmax(1)[0]),
        input=scaled.astype(np.float32),
        input_spikes=inp,
        layers=tuple(layers),
        output_spikes=out.spikes[:, 0].cpu().numpy().astype(np.uint8),
        output_mem=out.mem[:, 0].float().cpu().numpy(),
        threshold=float(cfg.threshold),
    )


def finite(v):
    """JSON-safe copy without NaN/inf (they become null)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    if isinstance(v, np.generic):
        return finite(v.item())
    return v


class RunFiles:
    """The text files of a run folder: metrics.json (atomic), events.jsonl, log.txt, and the
    tables other tools read (metrics.csv, steps.csv: :class:`engine.train.run_exports.RunTables`)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.tables = RunTables(self.run_dir)

    def metrics(self, metrics: dict) -> None:
        write_atomic(self.run_dir / METRICS_FILE, json.dumps(finite(metrics), indent=1))

    def event(self, ev) -> None:
        with open(self.run_dir / EVENTS_FILE, "a") as fh:
            fh.write(json.dumps(finite(to_json(ev))) + "\n")
        self.tables.add(ev)

    def step(self, ev) -> None:
        """One training step (not in events.jsonl: a row of steps.csv)."""
        self.tables.add(ev)

    def log(self, line: str) -> None:
        log.info(line)
        with open(self.run_dir / LOG_FILE, "a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
