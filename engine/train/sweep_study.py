"""A sweep's Optuna study: the sweep folder's spec, storage, stale-trial recovery and the summary.

A sweep folder ``DIR`` holds ``sweep.json`` (the base run config, the space and the storage URL),
``study.db`` (the default storage, ``sqlite:///DIR/study.db``), one run folder per trial
(``trial-0007/``), and at the end ``best.toml``. Trials left RUNNING by a killed process are
marked FAIL and queued again (optuna's ``RetryHeartbeatStaleTrialCallback``): at once when the process
ran on this machine and is gone, else when its heartbeat is older than ``GRACE_S``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from engine.atomic import write_atomic
from engine.errors import ConfigError
from engine.train.config import RunConfig, save_config
from engine.train.sweep_space import SpaceParam, apply_params, parse_space

STUDY_NAME = "sweep"
SPEC_FILE = "sweep.json"
BEST_FILE = "best.toml"
HEARTBEAT_S = 10
GRACE_S = 60
COUNTED = ("COMPLETE", "PRUNED")  # states that count toward the trials asked for


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep searches: base config, space, folder, storage (None = the folder's SQLite)."""

    base: RunConfig
    space: tuple[SpaceParam, ...]
    out: str
    storage: str | None = None

    @property
    def url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.out).resolve() / 'study.db'}"

    def to_dict(self) -> dict:
        return {
            "base": self.base.to_dict(),
            "space": {p.key: p.to_dict() for p in self.space},
            "storage": self.storage,
        }

    def save(self, n_trials: int | None = None) -> SweepSpec:
        """Write ``sweep.json`` (with the trials asked for); a folder already holding another
        sweep is refused. Returns the spec to run: a rerun without a storage URL continues in
        the storage the folder's sweep uses."""
        out = Path(self.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / SPEC_FILE
        spec = self
        if path.exists():
            old = read_spec(out)
            for part in ("base", "space"):
                if old.to_dict()[part] != self.to_dict()[part]:
                    raise ConfigError(
                        f"{path}: this folder holds a sweep with another {part} config; "
                        "rerun with the same files to continue it, or choose another --out"
                    )
            if self.storage is None and old.storage:
                spec = dataclasses.replace(self, storage=old.storage)
        d = spec.to_dict()
        if n_trials is not None:
            d["trials"] = int(n_trials)
        write_atomic(path, json.dumps(d, indent=1))  # space order kept: the tables follow it
        return spec


def read_spec(out: str | os.PathLike) -> SweepSpec:
    """The spec in ``DIR/sweep.json`` (ConfigError naming the file when absent or damaged)."""
    path = Path(out) / SPEC_FILE
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        base = RunConfig.from_dict(d["base"], source=str(path))
        space = parse_space(d["space"], base, source=str(path))
        return SweepSpec(base, space, str(out), d.get("storage"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no sweep here (run `snn-explorer sweep` first)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: damaged sweep file ({exc})") from None


def asked_trials(out: str | os.PathLike) -> int | None:
    """The number of trials the last run of the sweep in ``out`` asked for (None if unknown)."""
    try:
        n = json.loads((Path(out) / SPEC_FILE).read_text(encoding="utf-8")).get("trials")
    except (OSError, ValueError, AttributeError):
        return None
    return n if isinstance(n, int) and n > 0 else None


def open_study(spec: SweepSpec, sampler_seed: int | None = None):
    """``(study, storage)``: the sweep's study, created or continued (``load_if_exists``)."""
    import optuna
    import sqlalchemy.exc
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # ask/tell with our own heartbeat thread (engine.train.sweep) is what optuna warns about
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    url = spec.url
    if spec.storage is None:
        Path(spec.out).mkdir(parents=True, exist_ok=True)
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    retry = RetryHeartbeatStaleTrialCallback(inherit_intermediate_values=True)
    try:
        for attempt in range(5):
            try:
                storage = RDBStorage(
                    url,
                    engine_kwargs=kwargs,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=retry,
                )
                break
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
                # another process is creating the tables (locked), or recorded the schema
                # version a moment before this one (alembic_version's unique row)
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        study = optuna.create_study(
            storage=storage,
            study_name=STUDY_NAME,
            direction="maximize",
            load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=sampler_seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        )
    except (
        ImportError,
        ValueError,
        sqlalchemy.exc.SQLAlchemyError,
        optuna.exceptions.StorageInternalError,
    ) as exc:
        raise ConfigError(f"--storage {url}: cannot open the study ({exc})") from None
    return study, storage


def worker_tag(number: int) -> str:
    """Who runs trial ``number``: ``host:pid:number`` (copied retries carry a stale number)."""
    return f"{socket.gethostname()}:{os.getpid()}:{number}"


def _dead_here(tag: str, number: int) -> bool:
    host, _, rest = str(tag).partition(":")
    pid, _, num = rest.partition(":")
    if host != socket.gethostname() or num != str(number) or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # this process runs it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def recover_stale(study, storage) -> list[int]:
    """Mark trials left RUNNING by dead processes FAIL and queue them again; their numbers."""
    import optuna
    from optuna.trial import TrialState

    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    optuna.storages.fail_stale_trials(study)  # heartbeats older than the grace period
    failed = [
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.number in running
    ]
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _dead_here(t.user_attrs.get("worker", ""), t.number):
            continue
        try:
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another process recovered it first
        storage.get_heartbeat_stale_trial_callback()(study, storage.get_trial(t._trial_id))
        failed.append(t.number)
    return sorted(failed)


def counted(study, running: bool = True) -> int:
    """Trials that count toward the total (COMPLETE, PRUNED; and RUNNING when ``running``)."""
    states = COUNTED + (("RUNNING",) if running else ())
    return sum(t.state.name in states for t in study.get_trials(deepcopy=False))


# ----- the summary
@dataclass(frozen=True)
class TrialRow:
    """One trial as the table shows it; ``value`` is its best validation accuracy."""

    number: int
    state: str  # COMPLETE, PRUNED, RUNNING, FAIL, WAITING
    params: dict
    value: float | None
    seconds: float | None
    run_dir: str  # "" before it starts
    epochs: int
    retry_of: int | None = None


@dataclass(frozen=True)
class SweepSummary:
    out: str
    rows: tuple[TrialRow, ...]
    keys: tuple[str, ...]  # the searched parameters, in space order
    best_number: int | None
    best_value: float | None
    best_params: dict
    importances: dict = field(default_factory=dict)  # key -> share (sums to 1); {} = too few
    importance_note: str = ""

    @property
    def n_counted(self) -> int:
        return sum(r.state in COUNTED for r in self.rows)


def trial_rows(study, out: str | os.PathLike) -> tuple[TrialRow, ...]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = None
        if t.datetime_start is not None:
            end = t.datetime_complete
            if end is None and t.state.name == "RUNNING":
                import datetime

                end = datetime.datetime.now()
            seconds = (end - t.datetime_start).total_seconds() if end else None
        values = [v for v in t.intermediate_values.values() if math.isfinite(v)]
        value = t.value if t.value is not None else (max(values) if values else None)
        name = t.user_attrs.get("run_dir") if t.state.name != "WAITING" else ""
        if name and not (Path(out) / name).is_dir():
            name = ""  # a stopped trial's folder moved on to its retry
        history = t.system_attrs.get("retry_history") or []
        rows.append(
            TrialRow(
                number=t.number,
                state=t.state.name,
                params=dict(t.params),
                value=value,
                seconds=seconds,
                run_dir=str(Path(out) / name) if name else "",
                epochs=len(t.intermediate_values),
                retry_of=history[-1] if history else None,
            )
        )
    return tuple(rows)


def importances(study) -> tuple[dict, str]:
    """``(key -> importance, note)``; with too few finished trials, ``({}, why)``."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < 2:
        return {}, f"{len(done)} completed trial(s): importances need at least 2"
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError) as exc:
        return {}, f"importances not computed: {exc}"
    return {k: float(v) for k, v in found.items()}, ""


def summarise(study, spec: SweepSpec, write_best: bool = True) -> SweepSummary:
    """The table, the best trial (written as ``DIR/best.toml``) and the importances."""
    rows = trial_rows(study, spec.out)
    complete = [r for r in rows if r.state == "COMPLETE" and r.value is not None]
    best = max(complete, key=lambda r: (r.value, -r.number)) if complete else None
    if best is not None and write_best:
        cfg = apply_params(spec.base, best.params, source=f"trial {best.number}")
        save_config(cfg, Path(spec.out) / BEST_FILE)
    imp, note = importances(study)
    return SweepSummary(
        out=str(spec.out),
        rows=rows,
        keys=tuple(p.key for p in spec.space),
        best_number=best.number if best else None,
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        importances=imp,
        importance_note=note,
    )


def read_sweep(out: str | os.PathLike) -> SweepSummary:
    """The summary of the sweep in folder ``out`` (nothing written)."""
    spec = read_spec(out)
    study, _ = open_study(spec)
    return summarise(study, spec, write_best=False)
