"""The training loop: a Qt-free generator the CLI and the GUI both drive.

``train(cfg, run_dir, resume=False, stop=None)`` yields the events of
:mod:`engine.train.events` and returns a :class:`TrainResult`. Spiking models train by
backpropagation through time over ``cfg.steps`` steps with surrogate gradients; ANNs train the
usual way on the same data and splits.

Repeatability: the model is initialised from ``cfg.seed`` and each epoch draws its batch order,
SpecAugment masks and rate-code spikes from a generator seeded by ``(seed, epoch)``, so the same
seed gives the same metrics, and a resumed run (from an epoch checkpoint, or from a stop in the
middle of an epoch, whose generator state is saved) ends exactly as an uninterrupted one.

Stop: ``stop`` (a ``threading.Event``) is checked between batches and, through hooks, inside
each forward and backward pass; the half-done batch is discarded (batch-norm statistics
restored), a checkpoint is written, and the run ends with ``RunFinished(status="stopped")``.

Model selection: ``cfg.select = "last"`` (default) keeps the weights of the last epoch (with the
cosine schedule they generalise best: on FSDD the early epochs that tie on the small validation
set test 1-2 points lower); ``"best_val"`` and ``"best_loss"`` keep the epoch chosen by
:func:`engine.train.records.track_progress`. The kept model is ``best.pt``, the one tested.

Run folder: ``config.toml``, ``checkpoint.pt`` (latest), ``best.pt`` (the kept model),
``metrics.json``, ``events.jsonl`` (one JSON line per run start, epoch, checkpoint and finish),
``log.txt``, and ``metrics.csv``/``steps.csv`` (:mod:`engine.train.run_exports`).

Over 400 lines: the trainer's computing (set-up, resume, epochs, steps, evaluation, stop) is one
responsibility; what it records is :class:`engine.train.records.RunRecords`, its inputs
:mod:`engine.train.inputs`, crops and mixup :mod:`engine.train.crops`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import torch

from engine.errors import ConfigError, DataError
from engine.models.registry import (
    build_model,
    class_scores,
    count_params,
    is_spiking,
    layer_macs,
    loss_value,
    model_options,
    ops_per_inference,
    run_model,
)
from engine.train import distributed
from engine.train.amp import amp_context, describe_amp, resolve_amp
from engine.train.checkpoint import load_checkpoint
from engine.train.config import RunConfig, save_config
from engine.train.crops import crop_frames, crop_views, mixup_batch, random_crops
from engine.train.events import (
    Checkpointed,
    RunStarted,
    StepEnd,
    TrainEvent,
    TrainResult,
)
from engine.train.inputs import limit_splits, load_data, with_features
from engine.train.metrics import ActivityTally, confusion_matrix, precision_recall_f1
from engine.train.records import RunRecords, epoch_seed
from engine.train.run_folder import BEST_FILE, CHECKPOINT_FILE, CONFIG_FILE, clear_temporaries
from engine.train.schedule import learning_rate

log = logging.getLogger(__name__)

#: config fields a resumed run may change; the others come from the run's own checkpoint
RESUMABLE_CHANGES = ("epochs", "patience", "device", "amp")


class _Stopped(Exception):
    """Raised from inside a batch when a stop was requested."""


def train(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    stop: threading.Event | None = None,
    data=None,
) -> Generator[TrainEvent, None, TrainResult]:
    """Train ``cfg.model`` on ``cfg.data``, writing the run folder ``run_dir``.

    ``data`` may pass a ready ``FeatureSet`` (anything with ``x [N, C, H, W]``, ``y``,
    ``splits``, ``class_names``, ``feature_config``) instead of building it from ``cfg.data``.
    """
    stop = stop or threading.Event()
    run = Path(run_dir)
    ckpt = None
    if resume:
        ckpt = load_checkpoint(run / CHECKPOINT_FILE)
        stored = ckpt.run_config()
        changes = {k: getattr(cfg, k) for k in RESUMABLE_CHANGES}
        ignored = [
            k for k in cfg.to_dict() if k not in changes and getattr(cfg, k) != getattr(stored, k)
        ]
        if ignored and cfg != RunConfig():
            log.warning("resume: keeping the run's own %s", ", ".join(ignored))
        cfg = stored.replace(**changes)
        stale = clear_temporaries(run)
        if stale:
            log.info("resume: removed %s left by the interrupted run", ", ".join(stale))
    elif (run / CHECKPOINT_FILE).exists():
        raise ConfigError(
            f"{run}: already holds a run (checkpoint.pt); resume it or choose another folder"
        )
    run.mkdir(parents=True, exist_ok=True)
    fs = data
    if fs is None:
        fs = yield from load_data(cfg, stop)
        if fs is None:
            return _stopped_early_result(run)
    cfg = with_features(cfg, fs)
    trainer = _Trainer(cfg, run, fs, stop, ckpt)
    return (yield from trainer.run())


def _stopped_early_result(run: Path) -> TrainResult:
    return TrainResult("stopped", str(run), math.nan, math.nan, 0, {})


class _Trainer:
    """One run's state; ``run()`` is the generator ``train`` delegates to."""

    def __init__(self, cfg, run: Path, fs, stop, ckpt):
        from engine.device import resolve_device

        self.cfg, self.run_dir, self.fs, self.stop = cfg, run, fs, stop
        self.records = RunRecords(self)  # events and the run folder's files
        self.device = resolve_device(cfg.device)
        x = np.asarray(fs.x, dtype=np.float32)
        if x.ndim != 4:
            raise DataError(f"{cfg.data}: features must be [N, C, H, W], got {x.shape}")
        self.x = torch.from_numpy(x)
        self.y = torch.from_numpy(np.asarray(fs.y, dtype=np.int64))
        self.class_names = [str(c) for c in fs.class_names]
        self.n_classes = len(self.class_names)
        self.splits = limit_splits(fs.splits, cfg.limit, cfg.seed)
        if len(self.splits["train"]) < 2:
            raise DataError(f"{cfg.data}: fewer than 2 training examples (check --limit)")
        if not len(self.splits["val"]):  # no validation split: validate on the training data
            self.splits["val"] = self.splits["train"][: max(1, len(self.splits["train"]) // 10)]
        fc = getattr(fs, "feature_config", None)
        self.feature_config = fc.to_dict() if hasattr(fc, "to_dict") else fc
        image = bool(self.feature_config and self.feature_config.get("kind") == "image")
        self.input_shape = tuple(int(v) for v in x.shape[1:])
        self.crop = crop_frames(cfg.crop_s, self.feature_config, self.input_shape[-1])
        if self.crop:  # the model sees crops; tests average over them
            self.input_shape = (*self.input_shape[:-1], self.crop)
        self.spec = {
            "name": cfg.model,
            "input_shape": list(self.input_shape),
            "n_classes": self.n_classes,
            "options": model_options(cfg, image_input=image),
        }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.model = build_model(
                cfg.model, self.input_shape, self.n_classes, **self.spec["options"]
            )
        self.model.input_norm.fit(self.x[self.splits["train"]])
        self.model.to(self.device)
        # one process alone: net is the model; under torchrun: DDP (engine.train.distributed)
        self.group = distributed.current()
        self.model, self.net = distributed.wrap(self.model, self.group, self.device, cfg.sync_bn)
        self.spiking = is_spiking(self.model)
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt_cls = torch.optim.AdamW if cfg.optimiser == "adamw" else torch.optim.Adam
        self.opt = opt_cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.precision = resolve_amp(cfg.amp, self.device.type)
        self.amp_ctx, self.scaler = amp_context(self.precision, self.device.type)
        self.weight = None
        if cfg.class_weighting == "weights":
            from engine.data.balance import class_weights

            w = class_weights(self.y.numpy(), self.splits["train"], self.n_classes)
            self.weight = torch.as_tensor(np.asarray(w), dtype=torch.float32, device=self.device)
        self.augment = self._spec_augment_config()
        n = len(self.splits["train"])
        self.steps_per_epoch = n // cfg.batch + (1 if n % cfg.batch > 1 else 0)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.state = {
            "epoch": 0,
            "batch": 0,
            "global_step": 0,
            "best_val": -1.0,
            "best_val_loss": 1e30,
            "best_epoch": 0,
            "bad_epochs": 0,
            "elapsed": 0.0,
            "epoch_elapsed": 0.0,
            "loss_sum": 0.0,
            "correct": 0,
            "seen": 0,
            "finished": "",
        }
        self.history: list[dict] = []
        self.rng_resume: dict = {}
        self.best_weights = None
        self.epoch_rng = None  # the epoch's generator states, saved in a mid-epoch checkpoint
        self.cpu0 = 0.0
        self.trace_index = int(self.splits["val"][0])
        self.trace_ids: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.resumed = ckpt is not None
        self._stoppable = False  # the stop hooks raise only inside training and evaluation
        if ckpt is not None:
            self._restore(ckpt)
        self.macs = layer_macs(self.model, self.input_shape)

    # ----- set-up helpers
    def _spec_augment_config(self):
        if not self.cfg.augment:
            return None
        from engine.audio.augment import AugmentConfig

        a = AugmentConfig.from_dict(self.cfg.augment)
        return a if a.spec_enabled else None

    def _restore(self, ckpt) -> None:
        if ckpt.model.get("input_shape") != list(self.input_shape) or ckpt.class_names != list(
            self.class_names
        ):
            raise ConfigError(
                f"{ckpt.path}: the data now give input {self.input_shape} and classes "
                f"{self.class_names}, not the run's; resume with the same data and features"
            )
        self.model.load_state_dict(ckpt.weights)
        if ckpt.optimizer:
            self.opt.load_state_dict(ckpt.optimizer)
        self.state.update(ckpt.state)
        self.history = list(ckpt.metrics.get("history", []))
        self.rng_resume = dict(ckpt.rng)
        self.trace_ids = {
            k: (np.asarray(v[0]), np.asarray(v[1]))
            for k, v in ckpt.state.get("trace_ids", {}).items()
        }
        best = self.run_dir / BEST_FILE
        if best.exists():
            self.best_weights = load_checkpoint(best).weights

    # ----- the run
    def run(self):
        cfg, st = self.cfg, self.state
        save_config(cfg, self.run_dir / CONFIG_FILE)
        started = RunStarted(
            run_dir=str(self.run_dir),
            config=cfg.to_dict(),
            model=cfg.model,
            spiking=self.spiking,
            n_params=count_params(self.model),
            input_shape=self.input_shape,
            class_names=tuple(self.class_names),
            n_train=len(self.splits["train"]),
            n_val=len(self.splits["val"]),
            n_test=len(self.splits["test"]),
            device=str(self.device),
            epochs=cfg.epochs,
            steps_per_epoch=self.steps_per_epoch,
            start_epoch=st["epoch"],
            resumed=self.resumed,
            macs_per_layer=dict(self.macs),
        )
        self.records.event(started)
        self.records.log(
            f"{'resumed' if self.resumed else 'started'} {cfg.model} on {cfg.data or 'data'}: "
            f"{started.n_params} parameters, {started.n_train}/{started.n_val}/{started.n_test} "
            f"train/val/test, device {self.device}, {describe_amp(cfg.amp, self.precision)}"
        )
        yield started
        if self.spiking and not self.resumed:
            yield self.records.traces(0)
        # a stop inside a pass would leave the other processes waiting: between batches only
        hooks = self._install_stop_hooks() if self.group is None else []
        status, test = "completed", None
        try:
            while st["epoch"] < cfg.epochs and not st["finished"]:
                try:
                    yield from self._epoch()
                except _Stopped:
                    status = "stopped"
                    break
            else:
                status = st["finished"] or status
            if status != "stopped":
                try:
                    kept = self.best_weights if cfg.select != "last" else None
                    test = self._evaluate(self.splits["test"], weights=kept)
                except _Stopped:  # the last checkpoint stays as it was: resume tests again
                    return (yield from self.records.finish("stopped", test=None))
        finally:
            for h in hooks:
                h.remove()
        if status == "stopped":
            path = self.records.save(CHECKPOINT_FILE)
            yield Checkpointed(str(path), st["epoch"], "stop")
            return (yield from self.records.finish("stopped", test=None))
        return (yield from self.records.finish(status, test))

    def _epoch(self):
        cfg, st = self.cfg, self.state
        epoch = st["epoch"]
        g = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch))
        gd = (
            g
            if self.device.type == "cpu"
            else torch.Generator(self.device).manual_seed(epoch_seed(cfg.seed, epoch) ^ 1)
        )
        order = self._order(g)
        batches = [order[i : i + cfg.batch] for i in range(0, len(order), cfg.batch)]
        batches = [b for b in batches if len(b) > 1]  # batch norm needs 2 samples
        if st["batch"] and self.rng_resume:  # resuming in the middle of this epoch
            g.set_state(self.rng_resume["epoch"])
            if gd is not g and "device" in self.rng_resume:
                gd.set_state(self.rng_resume["device"].to(torch.uint8))
        self.rng_resume = {}
        t0 = time.perf_counter() - st["epoch_elapsed"]
        self.cpu0 = time.process_time()  # CPU seconds: a steadier figure on a shared machine
        self.model.train()
        for bi in range(st["batch"], len(batches)):
            st["epoch_elapsed"] = time.perf_counter() - t0
            self.epoch_rng = (g.get_state(), None if gd is g else gd.get_state())
            if distributed.any_rank(self.stop.is_set(), self.group, self.device):
                raise _Stopped
            tb = time.perf_counter()
            loss, correct = self._step(batches[bi], g, gd)
            st["batch"] = bi + 1
            st["global_step"] += 1
            n = len(batches[bi])
            st["loss_sum"] += loss * n
            st["correct"] += correct
            st["seen"] += n
            st["elapsed"] += time.perf_counter() - tb
            step_ev = StepEnd(
                epoch=epoch + 1,
                step=bi + 1,
                steps_per_epoch=len(batches),
                global_step=st["global_step"],
                loss=loss,
                accuracy=correct / n,
                lr=self.opt.param_groups[0]["lr"],
                samples_per_s=n / max(time.perf_counter() - tb, 1e-9),
                elapsed_s=st["elapsed"],
            )
            self.records.step(step_ev)
            yield step_ev
        st["epoch_elapsed"] = time.perf_counter() - t0
        self.epoch_rng = (g.get_state(), None if gd is g else gd.get_state())
        if distributed.any_rank(self.stop.is_set(), self.group, self.device):
            raise _Stopped
        tv = time.perf_counter()
        val = self._evaluate(self.splits["val"])
        st["elapsed"] += time.perf_counter() - tv
        yield from self.records.end_epoch(val, time.perf_counter() - t0)

    def _order(self, g: torch.Generator) -> np.ndarray:
        train = self.splits["train"]
        if self.cfg.class_weighting == "balanced_sampling":
            from engine.data.balance import balanced_sample_weights

            w = torch.as_tensor(
                np.asarray(balanced_sample_weights(self.y.numpy(), train)), dtype=torch.float64
            )
            pick = torch.multinomial(w, len(train), replacement=True, generator=g)
        else:
            pick = torch.randperm(len(train), generator=g)
        return train[pick.numpy()]

    def _step(self, idx: np.ndarray, g, gd) -> tuple[float, int]:
        cfg = self.cfg
        xb = random_crops(self.x[idx], self.crop, g)
        yb = self.y[idx]
        if self.augment is not None:
            from engine.audio.augment import spec_augment

            xb = spec_augment(xb, self.augment, g)
        # every rank mixes the whole global batch alike (g: seeded by seed and epoch), keeps its rows
        mix = mixup_batch(xb, cfg.mixup, g) if cfg.mixup > 0 else None
        part = distributed.shard(len(idx), self.group)  # this process's rows of the batch
        y_mix = None if mix is None else yb[mix[1]][part].to(self.device, non_blocking=True)
        xb = xb if mix is None else mix[0]
        xb = xb[part].to(self.device, non_blocking=True)
        yb = yb[part].to(self.device, non_blocking=True)
        lr = learning_rate(
            self.cfg, self.state["global_step"], self.steps_per_epoch, self.total_steps
        )
        for group in self.opt.param_groups:
            group["lr"] = lr
        buffers = [b.detach().clone() for b in self.model.buffers()]
        self._stoppable = True
        try:
            with self.amp_ctx():
                out = run_model(
                    self.net, xb, cfg.steps, cfg.encoder, cfg.encoder_options, generator=gd
                )
                loss = loss_value(out, yb, cfg.loss, self.weight, cfg.label_smoothing)
                if mix is not None:
                    other = loss_value(out, y_mix, cfg.loss, self.weight, cfg.label_smoothing)
                    loss = mix[2] * loss + (1.0 - mix[2]) * other
            self.opt.zero_grad(set_to_none=True)
            share = loss * distributed.loss_weight(len(yb), len(idx), self.group)
            (self.scaler.scale(share) if self.scaler else share).backward()
        except _Stopped:
            for b, saved in zip(self.model.buffers(), buffers):
                b.copy_(saved)
            self.opt.zero_grad(set_to_none=True)
            raise
        finally:
            self._stoppable = False
        if self.scaler:
            self.scaler.unscale_(self.opt)
        if cfg.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
        if self.scaler:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        with torch.no_grad():
            _, decision = class_scores(out, cfg.loss, cfg.predict)
            correct = int((decision.argmax(1) == yb).sum())
        if self.group is not None:  # the global batch's loss and count, as one process has them
            total, correct = distributed.reduce_sum(
                [float(loss.detach()) * len(yb), correct], self.group, self.device
            )
            return total / len(idx), int(correct)
        return float(loss.detach()), correct

    def _install_stop_hooks(self) -> list:
        """Raise _Stopped inside long forward and backward passes once a stop is asked for."""

        def check(*_args):
            if self._stoppable and self.stop.is_set():
                raise _Stopped

        hooks = [m.register_forward_pre_hook(check) for m in self.model.modules()]
        hooks += [p.register_hook(check) for p in self.model.parameters() if p.requires_grad]
        return hooks

    @torch.no_grad()
    def _evaluate(self, idx: np.ndarray, weights=None) -> dict:
        cfg = self.cfg
        model = self.model
        saved = None
        if weights is not None:
            saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
            model.load_state_dict(weights)
        model.eval()
        gen = torch.Generator(self.device).manual_seed(epoch_seed(cfg.seed, 10**6))
        tally = ActivityTally() if self.spiking else None
        preds, loss_sum = [], 0.0
        batch = max(cfg.batch, 64)
        self._stoppable = True
        try:
            for i in range(0, len(idx), batch):
                if self.stop.is_set():
                    raise _Stopped
                chunk = idx[i : i + batch]
                xb = self.x[chunk].to(self.device)
                yb = self.y[chunk].to(self.device)
                views = crop_views(xb, self.crop)  # [xb] unless the model was trained on crops
                score, how = 0.0, (cfg.steps, cfg.encoder, cfg.encoder_options, gen)
                for view in views:  # a long clip's class scores: the mean over its crops
                    # float32, not the training's autocast: the accuracy reported is the one
                    # classify, the Live tab and the exports get from these weights
                    out = run_model(model, view, *how, record=True)
                    part = float(loss_value(out, yb, cfg.loss, self.weight))
                    loss_sum += part * len(chunk) / len(views)
                    score = score + class_scores(out, cfg.loss, cfg.predict)[1].float()
                    if tally is not None:
                        tally.add(out.record)
                preds.append(score.argmax(1).cpu().numpy())
        finally:
            self._stoppable = False
            if saved is not None:
                model.load_state_dict(saved)
            model.train()
        pred = np.concatenate(preds) if preds else np.zeros(0, np.int64)
        true = self.y[idx].numpy()
        conf = confusion_matrix(true, pred, self.n_classes)
        res = {
            "loss": loss_sum / max(len(idx), 1),
            "acc": float((pred == true).mean()) if len(idx) else math.nan,
            "confusion": conf,
            "n": int(len(idx)),
        }
        res["precision"], res["recall"], res["f1"] = precision_recall_f1(conf)
        rates = tally.rates() if tally else {}
        res["rates"], res["dead"] = rates, (tally.dead() if tally else {})
        res["neurons"] = tally.neurons() if tally else {}
        res["ops"] = ops_per_inference(self.model, self.macs, rates, cfg.steps, cfg.encoder)
        return res
