"""Is a trained model better than guessing? One line saying so when it is not.

A run that ends at chance must never pass silently (a few clips per class, a dead output
layer): :func:`chance_warning` reads the metrics a run writes (``metrics.json``, or a
checkpoint's history) and returns one line with what is wrong and what to try, or ``None``.
The command line prints it after training, the Training tab shows it in orange beside the
result, sweep trials record it, and ``classify`` and the Live tab say it when every answer is
``unknown`` for that reason.

"Near chance" is an accuracy within one binomial standard deviation of guessing (at least
10 points) on the split it was measured on: with 6 validation clips of 3 classes, 3 right is
near chance, 4 is not.
"""

from __future__ import annotations

import math


def near_chance(acc: float | None, n: int, n_classes: int) -> bool:
    """True when ``acc`` on ``n`` examples of ``n_classes`` is within reach of guessing."""
    if acc is None or not math.isfinite(acc) or n < 1 or n_classes < 2:
        return False
    p = 1.0 / n_classes
    margin = max(0.10, math.sqrt(p * (1 - p) / n))
    return acc <= p + margin


def _kept_epoch(history: list[dict], best_epoch: int) -> dict | None:
    for h in history:
        if h.get("epoch") == best_epoch:
            return h
    return history[-1] if history else None


def chance_warning(
    *,
    n_classes: int,
    history: list[dict],
    best_epoch: int = 0,
    n_train: int = 0,
    n_val: int = 0,
    test_acc: float | None = None,
    n_test: int = 0,
    spiking: bool = False,
    twin: str | None = None,
) -> str | None:
    """One line when the kept model is no better than chance, or its output never fires.

    ``history`` holds the epoch rows of ``metrics.json`` (``val_acc``, ``dead_fractions``...);
    the kept epoch is ``best_epoch`` (the last one when absent). ``twin`` names the spiking
    model's non-spiking twin, suggested as something to try.
    """
    kept = _kept_epoch(history, best_epoch)
    if kept is None or n_classes < 2:
        return None
    what = []
    val_acc = kept.get("val_acc")
    if near_chance(val_acc, n_val, n_classes):
        what.append(f"validation {100 * val_acc:.0f} % of {n_val} clips")
    if near_chance(test_acc, n_test, n_classes):
        what.append(f"test {100 * test_acc:.0f} % of {n_test} clips")
    dead_out = (kept.get("dead_fractions") or {}).get("out")
    silent = spiking and dead_out is not None and dead_out >= 1.0
    if not what and not silent:
        return None
    chance = f"chance is {100 / n_classes:.0f} % for {n_classes} classes"
    if what:
        head = f"this model is no better than guessing ({', '.join(what)}; {chance})"
        if silent:
            head += " and its output layer never fired on validation"
    else:
        head = "the output layer never fired on validation (it decides from membranes alone)"
    tips = []
    per_class = n_train / n_classes if n_classes else 0
    if n_train and per_class < 20:
        tips.append(f"record more clips (about {per_class:.0f} per class trained; 20+ helps)")
    if spiking and twin:
        tips.append(f"compare with the non-spiking twin (--twin, {twin})")
    if silent or spiking:
        tips.append("more epochs (--epochs) or a smaller batch (--batch 8)")
    else:
        tips.append("more epochs (--epochs)")
    tips.append("check that the classes sound different")
    return f"{head}: try {'; '.join(tips)}"


def _kept(history: list[dict], select: str, best_epoch) -> int:
    """The epoch whose weights are kept (``cfg.select``): the last one, or ``best_epoch``."""
    if select == "last" or not best_epoch:
        return int(history[-1]["epoch"]) if history else 0
    return int(best_epoch)


def warning_from_metrics(metrics: dict) -> str | None:
    """:func:`chance_warning` of a run's ``metrics.json`` content."""
    from engine.models.registry import TWINS

    test = metrics.get("test") or {}
    model = metrics.get("model", "")
    history = list(metrics.get("history") or [])
    select = (metrics.get("config") or {}).get("select", "last")
    return chance_warning(
        n_classes=len(metrics.get("class_names") or []),
        history=history,
        best_epoch=_kept(history, select, metrics.get("best_epoch")),
        n_train=int(metrics.get("n_train") or 0),
        n_val=int(metrics.get("n_val") or 0),
        test_acc=test.get("accuracy"),
        n_test=int(test.get("n") or 0),
        spiking=bool(metrics.get("spiking")),
        twin=TWINS.get(model),
    )


def warning_from_checkpoint(ckpt) -> str | None:
    """:func:`chance_warning` of a loaded checkpoint (``best.pt``: its validation history),
    for ``classify`` and the Live tab; ``None`` for checkpoints without a history."""
    m = ckpt.metrics or {}
    if not m.get("history"):
        return None
    return warning_from_metrics(
        {
            **m,
            "class_names": list(ckpt.class_names),
            "model": (ckpt.model or {}).get("name", ""),
            "config": {"select": (ckpt.config or {}).get("select", "last")},
            "best_epoch": (ckpt.state or {}).get("best_epoch"),
        }
    )
