"""What a training run records: its epoch bookkeeping, checkpoints, metrics and log.

:class:`RunRecords` is the trainer's record keeper (a collaborator the trainer in
:mod:`engine.train.loop` holds as ``trainer.records``): it turns an epoch's numbers into events
(``EpochEnd``, ``Traces``, ``Checkpointed``, ``RunFinished``) and writes the run folder's files
(checkpoints, ``best.pt``, metrics, events, log, through :class:`engine.train.traces.RunFiles`).
The trainer computes (batches, evaluation, stop); the records read its public state (``cfg``,
``state``, ``model``, ``opt``, ``history``, ...) and never change how it trains, except keeping
the best epoch's weights in ``trainer.best_weights``.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from engine.atomic import atomic_path
from engine.models.registry import count_params
from engine.train.chance import warning_from_metrics
from engine.train.checkpoint import save_checkpoint
from engine.train.events import (
    Checkpointed,
    EpochEnd,
    LayerStats,
    RunFinished,
    Traces,
    TrainResult,
)
from engine.train.run_folder import BEST_FILE, CHECKPOINT_FILE
from engine.train.traces import RunFiles, trace_example


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s generators (batch order, masks, rate-code spikes)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0] >> 1)


#: a validation loss counts as progress when it is this fraction under the last progress mark
LOSS_PROGRESS = 1e-3


def track_progress(st: dict, acc: float, loss: float, epoch: int, select: str = "best_val") -> bool:
    """Update the early-stopping state ``st`` with one epoch's validation accuracy and loss;
    True when this epoch is the best one (its weights are the kept model under ``select``).

    ``select = "best_val"``: the best epoch has the highest accuracy, ties going to the lower
    loss; ``"best_loss"``: the lowest loss, ties going to the higher accuracy (``"last"`` marks
    epochs as ``"best_val"`` does, for display). Patience counts epochs (``bad_epochs``) with
    neither a higher accuracy nor a loss lower by :data:`LOSS_PROGRESS` than the last such gain: on a
    validation split of a few dozen clips the accuracy moves in steps of 1-2 % and plateaus for
    many epochs while the loss still falls (in 20 Kitchen20 runs stopped on accuracy alone the
    lowest validation loss came in each run's last four epochs), so stopping on accuracy alone
    ends runs that are still learning.
    """
    # checkpoints of runs that predate these two keys tracked the accuracy's best epoch
    highest = st.get("highest_val_acc", st["best_val"])
    lowest = st.get("lowest_val_loss", st["best_val_loss"])
    better, lower = acc > highest, loss < lowest * (1.0 - LOSS_PROGRESS)
    if better:
        st["highest_val_acc"] = acc
    if lower:  # the mark moves only by progress, so a slow drift adds up to progress
        st["lowest_val_loss"] = loss
    if select == "best_loss":
        best, tie = loss < st["best_val_loss"], acc > st["best_val"]
        is_best = best or (loss == st["best_val_loss"] and tie)
    else:
        best, tie = acc > st["best_val"], loss < st["best_val_loss"]
        is_best = best or (acc == st["best_val"] and tie)
    if is_best:
        st["best_val"], st["best_val_loss"], st["best_epoch"] = acc, loss, epoch
    st["bad_epochs"] = 0 if (better or lower) else st["bad_epochs"] + 1
    return is_best


class RunRecords:
    """Epoch bookkeeping and the run folder's files of one trainer's run."""

    def __init__(self, trainer):
        self.t = trainer
        self.files = RunFiles(trainer.run_dir)

    def end_epoch(self, val: dict, epoch_time: float):
        """Events and files at the end of an epoch: EpochEnd, Traces, then Checkpointed."""
        t = self.t
        cfg, st = t.cfg, t.state
        epoch = st["epoch"] + 1
        is_best = track_progress(st, val["acc"], val["loss"], epoch, cfg.select)
        if is_best:
            t.best_weights = {k: v.detach().cpu().clone() for k, v in t.model.state_dict().items()}
        layers = (
            tuple(
                LayerStats(name, val["neurons"][name], val["rates"][name], val["dead"][name])
                for name in t.model.layer_names
                if name in val["neurons"]
            )
            if t.spiking
            else ()
        )
        ev = EpochEnd(
            epoch=epoch,
            epochs=cfg.epochs,
            train_loss=st["loss_sum"] / max(st["seen"], 1),
            train_acc=st["correct"] / max(st["seen"], 1),
            val_loss=val["loss"],
            val_acc=val["acc"],
            confusion=val["confusion"],
            precision=val["precision"],
            recall=val["recall"],
            f1=val["f1"],
            layers=layers,
            synops=val["ops"]["synops"],
            macs=val["ops"]["macs"],
            lr=t.opt.param_groups[0]["lr"],
            epoch_time_s=epoch_time,
            elapsed_s=st["elapsed"],
            best_val_acc=st["best_val"],
            is_best=is_best,
        )
        t.history.append(
            {
                "epoch": epoch,
                "train_loss": ev.train_loss,
                "train_acc": ev.train_acc,
                "val_loss": ev.val_loss,
                "val_acc": ev.val_acc,
                "lr": ev.lr,
                "epoch_time_s": epoch_time,
                "epoch_cpu_s": time.process_time() - t.cpu0,
                "elapsed_s": st["elapsed"],
                "synops": ev.synops,
                "macs": ev.macs,
                "firing_rates": {s.name: s.firing_rate for s in layers},
                "dead_fractions": {s.name: s.dead_fraction for s in layers},
            }
        )
        self.log(
            f"epoch {epoch}/{cfg.epochs}: train loss {ev.train_loss:.4f} acc {ev.train_acc:.4f}, "
            f"val loss {ev.val_loss:.4f} acc {ev.val_acc:.4f}, {epoch_time:.1f} s"
        )
        self.event(ev)
        yield ev
        if t.spiking:
            yield self.traces(epoch)
        st.update(epoch=epoch, batch=0, epoch_elapsed=0.0, loss_sum=0.0, correct=0, seen=0)
        if cfg.patience and st["bad_epochs"] >= cfg.patience and epoch < cfg.epochs:
            st["finished"] = "early_stopped"
            self.log(f"early stop: no better validation accuracy or loss for {cfg.patience} epochs")
        path = self.save(CHECKPOINT_FILE)
        if is_best or cfg.select == "last":
            with atomic_path(t.run_dir / BEST_FILE) as tmp:
                try:  # a hard link costs nothing; checkpoint.pt is later replaced, never rewritten
                    os.link(path, tmp)
                except OSError:
                    shutil.copyfile(path, tmp)
        ev_ck = Checkpointed(str(path), epoch, "epoch")
        self.event(ev_ck)
        self.write_metrics(status="running", test=None)
        yield ev_ck

    def traces(self, epoch: int) -> Traces:
        """The tracked validation example's spikes and membranes after epoch ``epoch``."""
        t = self.t
        i = t.trace_index
        gen = torch.Generator(t.device).manual_seed(epoch_seed(t.cfg.seed, 10**6 + 1))
        # a model trained on crops (crop_s) is traced on the clip's first crop
        x1 = t.x[i : i + 1, ..., : t.input_shape[-1]].to(t.device)
        return trace_example(t.model, x1, int(t.y[i]), i, t.cfg, gen, t.trace_ids, epoch)

    # ----- files
    def save(self, name: str) -> Path:
        """Write the trainer's state as checkpoint ``name`` in the run folder."""
        t = self.t
        st = dict(t.state)
        st["trace_ids"] = {k: [v[0].tolist(), v[1].tolist()] for k, v in t.trace_ids.items()}
        rng = {"torch": torch.get_rng_state()}
        if st["batch"] and t.epoch_rng:
            rng["epoch"] = t.epoch_rng[0]
            if t.epoch_rng[1] is not None:
                rng["device"] = t.epoch_rng[1].cpu()
        return save_checkpoint(
            t.run_dir / name,
            config=t.cfg.to_dict(),
            model=t.spec,
            class_names=t.class_names,
            feature_config=t.feature_config,
            metrics={  # what chance_warning needs of a checkpoint (classify, the Live tab)
                "history": t.history,
                "n_train": len(t.splits["train"]),
                "n_val": len(t.splits["val"]),
                "spiking": t.spiking,
            },
            state=st,
            weights=t.model.state_dict(),
            optimizer=t.opt.state_dict(),
            rng=rng,
        )

    def finish(self, status: str, test: dict | None):
        """Yield RunFinished, write the final metrics; returns the TrainResult."""
        t = self.t
        st = t.state
        metrics = self.write_metrics(status, test)
        warning = metrics.get("warning") or ""
        ev = RunFinished(
            status=status,
            epochs_done=st["epoch"],
            best_epoch=st["best_epoch"],
            best_val_acc=st["best_val"] if st["best_val"] >= 0 else math.nan,
            test_acc=test["acc"] if test else math.nan,
            test_loss=test["loss"] if test else math.nan,
            test_confusion=test["confusion"] if test else None,
            total_time_s=st["elapsed"],
            run_dir=str(t.run_dir),
            warning=warning,
        )
        if warning:
            self.log(f"warning: {warning}")
        if test:
            self.log(
                f"finished ({status}): test accuracy {test['acc']:.4f} on {test['n']} examples"
            )
        else:
            self.log(f"finished ({status})")
        self.event(ev)
        yield ev
        return TrainResult(
            status=status,
            run_dir=str(t.run_dir),
            test_acc=ev.test_acc,
            best_val_acc=ev.best_val_acc,
            epochs_done=st["epoch"],
            metrics=metrics,
        )

    def write_metrics(self, status: str, test: dict | None) -> dict:
        t = self.t
        st, cfg = t.state, t.cfg
        times = [h["epoch_time_s"] for h in t.history]
        last_ops = t.history[-1] if t.history else {}
        metrics = {
            "status": status,
            "model": cfg.model,
            "spiking": t.spiking,
            "params": count_params(t.model),
            "input_shape": list(t.input_shape),
            "class_names": t.class_names,
            "device": str(t.device),
            "n_train": len(t.splits["train"]),
            "n_val": len(t.splits["val"]),
            "n_test": len(t.splits["test"]),
            "epochs_done": st["epoch"],
            "best_epoch": st["best_epoch"],
            "best_val_acc": st["best_val"] if st["best_val"] >= 0 else None,
            "mean_epoch_time_s": float(np.mean(times)) if times else None,
            "total_time_s": st["elapsed"],
            "synops": last_ops.get("synops"),
            "macs": last_ops.get("macs"),
            "history": t.history,
            "test": None,
            "config": cfg.to_dict(),
        }
        if test:
            metrics["test"] = {
                "accuracy": test["acc"],
                "loss": test["loss"],
                "n": test["n"],
                "confusion": test["confusion"].tolist(),
                "precision": test["precision"].tolist(),
                "recall": test["recall"].tolist(),
                "f1": test["f1"].tolist(),
            }
        if status != "running":
            metrics["warning"] = warning_from_metrics(metrics)
        self.files.metrics(metrics)
        return metrics

    def event(self, ev) -> None:
        self.files.event(ev)

    def step(self, ev) -> None:
        """One training step (a row of steps.csv, not an events.jsonl line)."""
        self.files.step(ev)

    def log(self, line: str) -> None:
        self.files.log(line)
