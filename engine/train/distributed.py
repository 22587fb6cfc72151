"""Data-parallel training over several processes (``torchrun``), the same run folder as one.

``snn-explorer train ... --nproc N`` runs ``torch.distributed.run`` in its own process (see
:func:`torchrun_args` and :mod:`engine.train.launcher`: no rank outlives the launcher); each of
the N processes then runs :func:`train_distributed`:

- the process group: gloo on the CPU (one torch thread per process, or they fight over the
  cores), NCCL on CUDA (process ``LOCAL_RANK`` on GPU ``LOCAL_RANK``);
- the model is wrapped in ``DistributedDataParallel`` (:func:`wrap`), optionally with
  ``SyncBatchNorm`` (CUDA only: torch's SyncBatchNorm has no CPU kernel);
- the batches: every process draws the loop's own batch order from ``(seed, epoch)`` (so the
  order is the one-process order) and trains on its slice of each global batch (:func:`shard`).
  The local losses are weighted by the slice's share of the batch, so DDP's gradient average is
  the gradient of the global batch's mean loss: the global batch equals the one-process batch;
- only rank 0 writes the run folder (checkpoints, events, metrics, log); the others write into a
  private scratch folder that is removed at the end, so the loop itself needs no special case.
  ``--resume`` works the same way: every process loads the run's ``checkpoint.pt``.

Multi-node: ``torchrun --nnodes 2 --node-rank R --rdzv-backend c10d --rdzv-endpoint HOST:29500
--nproc-per-node G -m app.cli train ...`` (docs/gpu-and-distributed.md).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from engine.errors import ConfigError
from engine.train.launcher import guard_rank
from engine.train.run_folder import BEST_FILE, CHECKPOINT_FILE


@dataclass(frozen=True)
class Group:
    """This process's place in the job."""

    rank: int
    world: int
    local_rank: int

    @property
    def is_writer(self) -> bool:
        return self.rank == 0


def env_group() -> Group | None:
    """The group torchrun describes in the environment; None for a one-process run."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    return Group(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def current() -> Group | None:
    """The initialised process group of this process (None when training alone)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return None
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def init(device: str = "auto") -> Group | None:
    """Join the job torchrun started (no-op without one); gloo on the CPU, NCCL on CUDA."""
    group = env_group()
    if group is None:
        return None
    if dist.is_initialized():
        return current()
    guard_rank()  # no rank outlives its launcher (the CLI calls it earlier still)
    cuda = torch.cuda.is_available() and device in ("auto", "", "cuda") or device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(group.local_rank)
    else:
        torch.set_num_threads(1)
    dist.init_process_group("nccl" if cuda else "gloo")
    return current()


def shard(n: int, group: Group | None) -> slice:
    """The rows of a global batch of ``n`` examples that ``group.rank`` trains on."""
    if group is None:
        return slice(0, n)
    bounds = np.linspace(0, n, group.world + 1).round().astype(int)
    return slice(int(bounds[group.rank]), int(bounds[group.rank + 1]))


def loss_weight(n_local: int, n_global: int, group: Group | None) -> float:
    """Factor on the local mean loss that makes DDP's gradient average the global mean's."""
    if group is None:
        return 1.0
    return n_local * group.world / max(n_global, 1)


class _DataParallel(DistributedDataParallel):
    """DDP that also answers the wrapped model's attributes (``spiking``, ``input_norm``...)."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def wrap(model: torch.nn.Module, group: Group | None, device: torch.device, sync_bn=False):
    """``(model, net)``: the model (SyncBatchNorm layers when asked) and what trains it."""
    if group is None:
        return model, model
    if sync_bn:
        if device.type != "cuda":
            raise ConfigError("sync_bn: SyncBatchNorm needs CUDA; leave it off on the CPU")
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index if device.index is not None else group.local_rank]
    net = _DataParallel(model, device_ids=ids if device.type == "cuda" else None)
    return model, net


def reduce_sum(values: list[float], group: Group | None, device) -> list[float]:
    """The sums over all processes of ``values`` (the same list in every process)."""
    if group is None:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def any_rank(flag: bool, group: Group | None, device) -> bool:
    """True when ``flag`` is true in any process (a stop must end every process together)."""
    if group is None:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def torchrun_args(argv: list[str], nproc: int) -> list[str]:
    """torchrun's arguments that run ``snn-explorer train ARGV`` in ``nproc`` processes (what
    ``train --nproc`` gives :func:`engine.train.launcher.run_torchrun`)."""
    if nproc < 1:
        raise ConfigError(f"--nproc: {nproc} processes; give 1 or more")
    return ["--standalone", "--nproc-per-node", str(nproc), "-m", "app.cli", "train", *argv]


def launch_command(argv: list[str], nproc: int) -> list[str]:
    """The torchrun command line that runs ``snn-explorer train ARGV`` in ``nproc`` processes."""
    return [sys.executable, "-m", "torch.distributed.run", *torchrun_args(argv, nproc)]


def train_command(
    config: str | os.PathLike,
    run_dir: str | os.PathLike,
    nproc: int,
    *,
    resume: bool = False,
    tensorboard: bool = False,
) -> list[str]:
    """The command line of ``snn-explorer train --config CONFIG --out RUN_DIR --nproc N``
    (what the Training tab's "Processes / GPUs" starts): :func:`launch_command`, so the CLI and
    the GUI start the same torchrun job. The config file's settings are used as they are (no
    small-data recipe: ``--config`` turns it off)."""
    argv = ["--config", str(config), "--out", str(run_dir), "--quiet"]
    argv += ["--resume"] * resume + ["--tensorboard"] * tensorboard
    return launch_command(argv, nproc)


def train_distributed(
    runner, cfg, run_dir, *, resume: bool = False, stop=None, **kwargs
) -> Generator:
    """``runner(cfg, run_dir, resume=..., stop=..., **kwargs)`` (``engine.train.loop.train`` or
    ``engine.train.recorded_run.train_recorded``) as one process of a torchrun job, or alone.

    Rank 0 yields the runner's events and writes ``run_dir``; the other ranks yield nothing and
    write into a scratch folder (a copy of the run's checkpoints when resuming).
    """
    group = init(cfg.device)
    if group is None:
        return (yield from runner(cfg, run_dir, resume=resume, stop=stop, **kwargs))
    if group.is_writer:
        try:
            dist.barrier()  # the run folder changes only after every rank copied its checkpoint
            return (yield from runner(cfg, run_dir, resume=resume, stop=stop, **kwargs))
        finally:
            _leave(group)
    scratch = Path(tempfile.mkdtemp(prefix=f"snn-rank{group.rank}-"))
    try:
        if resume:
            for name in (CHECKPOINT_FILE, BEST_FILE):
                if (Path(run_dir) / name).exists():
                    shutil.copyfile(Path(run_dir) / name, scratch / name)
        dist.barrier()
        gen = runner(cfg, scratch, resume=resume, stop=stop, **kwargs)
        while True:
            try:
                next(gen)
            except StopIteration as done:
                return done.value
    finally:
        _leave(group)
        shutil.rmtree(scratch, ignore_errors=True)


def _leave(group: Group | None) -> None:
    if group is not None and dist.is_initialized():
        dist.destroy_process_group()
