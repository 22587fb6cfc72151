"""What a training run records: its epoch bookkeeping, checkpoints, metrics and log.

:class:`RunRecords` is the part of the trainer in :mod:`engine.train.loop` that turns an epoch's
numbers into events (``EpochEnd``, ``Traces``, ``Checkpointed``, ``RunFinished``) and into the
run folder's files; the loop itself (batches, evaluation, stop) stays in :mod:`engine.train.loop`.
It works on the trainer's own attributes (``cfg``, ``state``, ``model``, ``opt``, ``history``,
``files``, ...), so it is a mixin, not a second object.
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
from engine.train.traces import trace_example


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch``'s generators (batch order, masks, rate-code spikes)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0] >> 1)


class RunRecords:
    """Epoch bookkeeping and the run folder's files (mixed into the trainer)."""

    def _end_epoch(self, val: dict, epoch_time: float):
        cfg, st = self.cfg, self.state
        epoch = st["epoch"] + 1
        is_best = val["acc"] > st["best_val"] or (
            val["acc"] == st["best_val"] and val["loss"] < st["best_val_loss"]
        )
        if is_best:
            st["best_val"], st["best_val_loss"] = val["acc"], val["loss"]
            st["best_epoch"], st["bad_epochs"] = epoch, 0
            self.best_weights = {
                k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()
            }
        else:
            st["bad_epochs"] += 1
        layers = (
            tuple(
                LayerStats(name, val["neurons"][name], val["rates"][name], val["dead"][name])
                for name in self.model.layer_names
                if name in val["neurons"]
            )
            if self.spiking
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
            lr=self.opt.param_groups[0]["lr"],
            epoch_time_s=epoch_time,
            elapsed_s=st["elapsed"],
            best_val_acc=st["best_val"],
            is_best=is_best,
        )
        self.history.append(
            {
                "epoch": epoch,
                "train_loss": ev.train_loss,
                "train_acc": ev.train_acc,
                "val_loss": ev.val_loss,
                "val_acc": ev.val_acc,
                "lr": ev.lr,
                "epoch_time_s": epoch_time,
                "epoch_cpu_s": time.process_time() - self._cpu0,
                "elapsed_s": st["elapsed"],
                "synops": ev.synops,
                "macs": ev.macs,
                "firing_rates": {s.name: s.firing_rate for s in layers},
                "dead_fractions": {s.name: s.dead_fraction for s in layers},
            }
        )
        self._log(
            f"epoch {epoch}/{cfg.epochs}: train loss {ev.train_loss:.4f} acc {ev.train_acc:.4f}, "
            f"val loss {ev.val_loss:.4f} acc {ev.val_acc:.4f}, {epoch_time:.1f} s"
        )
        self._log_event(ev)
        yield ev
        if self.spiking:
            yield self._traces(epoch)
        st.update(epoch=epoch, batch=0, epoch_elapsed=0.0, loss_sum=0.0, correct=0, seen=0)
        if cfg.patience and st["bad_epochs"] >= cfg.patience and epoch < cfg.epochs:
            st["finished"] = "early_stopped"
            self._log(f"early stop: no better validation accuracy for {cfg.patience} epochs")
        path = self._save(CHECKPOINT_FILE)
        if is_best or cfg.select == "last":
            with atomic_path(self.run_dir / BEST_FILE) as tmp:
                try:  # a hard link costs nothing; checkpoint.pt is later replaced, never rewritten
                    os.link(path, tmp)
                except OSError:
                    shutil.copyfile(path, tmp)
        ev_ck = Checkpointed(str(path), epoch, "epoch")
        self._log_event(ev_ck)
        self._write_metrics(status="running", test=None)
        yield ev_ck

    def _traces(self, epoch: int) -> Traces:
        i = self.trace_index
        gen = torch.Generator(self.device).manual_seed(epoch_seed(self.cfg.seed, 10**6 + 1))
        # a model trained on crops (crop_s) is traced on the clip's first crop
        x1 = self.x[i : i + 1, ..., : self.input_shape[-1]].to(self.device)
        return trace_example(
            self.model, x1, int(self.y[i]), i, self.cfg, gen, self.trace_ids, epoch
        )

    # ----- files
    def _save(self, name: str) -> Path:
        st = dict(self.state)
        st["trace_ids"] = {k: [v[0].tolist(), v[1].tolist()] for k, v in self.trace_ids.items()}
        rng = {"torch": torch.get_rng_state()}
        if st["batch"] and getattr(self, "_rng", None):
            rng["epoch"] = self._rng[0]
            if self._rng[1] is not None:
                rng["device"] = self._rng[1].cpu()
        return save_checkpoint(
            self.run_dir / name,
            config=self.cfg.to_dict(),
            model=self.spec,
            class_names=self.class_names,
            feature_config=self.feature_config,
            metrics={"history": self.history},
            state=st,
            weights=self.model.state_dict(),
            optimizer=self.opt.state_dict(),
            rng=rng,
        )

    def _finish(self, status: str, test: dict | None):
        st = self.state
        metrics = self._write_metrics(status, test)
        ev = RunFinished(
            status=status,
            epochs_done=st["epoch"],
            best_epoch=st["best_epoch"],
            best_val_acc=st["best_val"] if st["best_val"] >= 0 else math.nan,
            test_acc=test["acc"] if test else math.nan,
            test_loss=test["loss"] if test else math.nan,
            test_confusion=test["confusion"] if test else None,
            total_time_s=st["elapsed"],
            run_dir=str(self.run_dir),
        )
        if test:
            self._log(
                f"finished ({status}): test accuracy {test['acc']:.4f} on {test['n']} examples"
            )
        else:
            self._log(f"finished ({status})")
        self._log_event(ev)
        yield ev
        return TrainResult(
            status=status,
            run_dir=str(self.run_dir),
            test_acc=ev.test_acc,
            best_val_acc=ev.best_val_acc,
            epochs_done=st["epoch"],
            metrics=metrics,
        )

    def _write_metrics(self, status: str, test: dict | None) -> dict:
        st, cfg = self.state, self.cfg
        times = [h["epoch_time_s"] for h in self.history]
        last_ops = self.history[-1] if self.history else {}
        metrics = {
            "status": status,
            "model": cfg.model,
            "spiking": self.spiking,
            "params": count_params(self.model),
            "input_shape": list(self.input_shape),
            "class_names": self.class_names,
            "device": str(self.device),
            "n_train": len(self.splits["train"]),
            "n_val": len(self.splits["val"]),
            "n_test": len(self.splits["test"]),
            "epochs_done": st["epoch"],
            "best_epoch": st["best_epoch"],
            "best_val_acc": st["best_val"] if st["best_val"] >= 0 else None,
            "mean_epoch_time_s": float(np.mean(times)) if times else None,
            "total_time_s": st["elapsed"],
            "synops": last_ops.get("synops"),
            "macs": last_ops.get("macs"),
            "history": self.history,
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
        self.files.metrics(metrics)
        return metrics

    def _log_event(self, ev) -> None:
        self.files.event(ev)

    def _log(self, line: str) -> None:
        self.files.log(line)
