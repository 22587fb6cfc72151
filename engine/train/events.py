"""Events the training loop yields (frozen dataclasses of NumPy arrays and plain values).

Order: ``Preparing``* (feature extraction), ``RunStarted``, ``Traces`` (untrained, epoch 0),
then per epoch ``StepEnd``* ``EpochEnd`` ``Traces`` ``Checkpointed``, and ``RunFinished``.
A stop request ends the run with ``Checkpointed(reason="stop")`` and
``RunFinished(status="stopped")``. ``to_json(event)`` gives the line written to events.jsonl.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Preparing:
    """Loading data or computing features: ``done`` of ``total`` (0 when unknown)."""

    message: str
    done: int = 0
    total: int = 0


@dataclass(frozen=True)
class RunStarted:
    run_dir: str
    config: dict
    model: str
    spiking: bool
    n_params: int
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    n_train: int
    n_val: int
    n_test: int
    device: str
    epochs: int
    steps_per_epoch: int
    start_epoch: int  # epochs already done (resume)
    resumed: bool
    macs_per_layer: dict  # layer -> MACs per sample for one step


@dataclass(frozen=True)
class StepEnd:
    epoch: int  # 1-based
    step: int  # 1-based within the epoch
    steps_per_epoch: int
    global_step: int
    loss: float
    accuracy: float  # on this batch
    lr: float
    samples_per_s: float
    elapsed_s: float


@dataclass(frozen=True)
class LayerStats:
    """Per spiking layer, over the whole validation split."""

    name: str
    neurons: int
    firing_rate: float  # mean spikes per neuron per step
    dead_fraction: float  # neurons that never fired on any validation example


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    confusion: np.ndarray  # [C, C] int64, rows = true class, columns = predicted
    precision: np.ndarray  # [C]
    recall: np.ndarray  # [C]
    f1: np.ndarray  # [C]
    layers: tuple[LayerStats, ...]  # empty for ANNs
    synops: float  # per inference (spiking layers fed by spikes)
    macs: float  # per inference (ANN layers, or an SNN's first layer on the direct current)
    lr: float
    epoch_time_s: float
    elapsed_s: float
    best_val_acc: float
    is_best: bool


@dataclass(frozen=True)
class LayerTrace:
    """One spiking layer on the tracked example (neurons subsampled to what a plot needs)."""

    name: str
    spikes: np.ndarray  # [T, n] uint8
    neuron_ids: np.ndarray  # [n] flat indices of the shown neurons
    mem: np.ndarray  # [T, k] float32 membrane of k neurons
    mem_ids: np.ndarray  # [k]
    total_neurons: int
    spike_count: int  # all neurons, all steps


@dataclass(frozen=True)
class Traces:
    """The fixed validation example through the network (report Figs. 25, 26, 30)."""

    epoch: int  # 0 = before training
    example_index: int  # index into the feature set
    label: int
    predicted: int
    input: np.ndarray  # [H, W] float32 (the scaled input of channel 0)
    input_spikes: np.ndarray | None  # [T, n] uint8, None for the direct current
    layers: tuple[LayerTrace, ...]
    output_spikes: np.ndarray  # [T, C] uint8
    output_mem: np.ndarray  # [T, C] float32
    threshold: float


@dataclass(frozen=True)
class Checkpointed:
    path: str
    epoch: int  # whole epochs done
    reason: str  # "epoch", "best" or "stop"


@dataclass(frozen=True)
class RunFinished:
    status: str  # "completed", "early_stopped" or "stopped"
    epochs_done: int
    best_epoch: int
    best_val_acc: float
    test_acc: float  # nan when stopped before testing
    test_loss: float
    test_confusion: np.ndarray | None
    total_time_s: float
    run_dir: str
    warning: str = ""  # one line when the model is no better than chance (engine.train.chance)


TrainEvent = Preparing | RunStarted | StepEnd | EpochEnd | Traces | Checkpointed | RunFinished


@dataclass(frozen=True)
class TrainResult:
    """What ``train`` returns: the final status and the metrics written to metrics.json."""

    status: str
    run_dir: str
    test_acc: float
    best_val_acc: float
    epochs_done: int
    metrics: dict


def _plain(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if dataclasses.is_dataclass(v):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    return v


def to_json(event) -> dict:
    """A JSON-safe dict of an event, with its type under ``"event"`` (NaN becomes null)."""
    return {"event": type(event).__name__, **_plain(event)}
