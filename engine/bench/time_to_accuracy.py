"""Time to accuracy on FSDD: test accuracy against training wall time, reference vs app.

The reference recipe is the report's (snnTorch loop, T=25, Adam, cross-entropy on spike
counts, :mod:`engine.bench.reference`); the app's runs through ``engine.train.loop.train`` (its own
loop, the app's defaults). Minutes of training: not part of the default bench or of CI.
"""

from __future__ import annotations

import time

from engine.device import cpu_has_bf16


def _ratio(a, b):
    return round(a / b, 3) if a and b else None


FSDD_SPEC = "fsdd:../shared/data/fsdd/recordings"


REFERENCE_RECIPE = {"steps": 25, "batch": 32, "lr": 1e-3, "epochs": 15}


APP_RECIPE = {"steps": 10, "epochs": 15}  # the rest: RunConfig's defaults (the app's best)


def _point(epoch: int, wall: float, cpu: float, acc: float) -> dict:
    """One point of a time-to-accuracy curve (training wall and CPU time, test accuracy)."""
    return {
        "epoch": epoch,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "test_acc": round(acc, 4),
    }


def _test_accuracy(model, forward, x, y, batch: int = 256) -> float:
    import torch

    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = forward(model, x[i : i + batch])
            correct += int((out.argmax(1) == y[i : i + batch]).sum())
    return correct / max(len(x), 1)


def _reference_curve(fs, recipe: dict, target: float, limit_s: float, progress=None) -> dict:
    """Train the reference (snnTorch loop, Adam, CE on counts) on a FeatureSet; test accuracy
    after every epoch against the training wall time (evaluation not counted)."""
    import numpy as np
    import torch

    from engine.bench.reference import ReferenceCSNN, reference_train_step

    torch.manual_seed(0)
    x = torch.from_numpy(np.asarray(fs.x, dtype=np.float32))
    y = torch.from_numpy(np.asarray(fs.y, dtype=np.int64))
    train, test = fs.splits["train"], fs.splits["test"]
    model = ReferenceCSNN(tuple(x.shape[1:]), len(fs.class_names), steps=recipe["steps"])
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    g = torch.Generator().manual_seed(0)
    curve, wall, cpu = [], 0.0, 0.0
    for epoch in range(recipe["epochs"]):
        t0, c0 = time.perf_counter(), time.process_time()
        order = train[torch.randperm(len(train), generator=g).numpy()]
        model.train()
        for i in range(0, len(order), recipe["batch"]):
            idx = order[i : i + recipe["batch"]]
            reference_train_step(model, opt, x[idx], y[idx])
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        model.eval()
        acc = _test_accuracy(model, lambda m, v: m(v)[0].sum(0), x[test], y[test])
        curve.append(_point(epoch + 1, wall, cpu, acc))
        if progress:
            progress("reference", curve[-1])
        if acc >= target or wall > limit_s:
            break
    return {"recipe": recipe, "curve": curve}


def _app_curve(spec: str, fs, recipe: dict, target: float, limit_s: float, progress=None) -> dict:
    """Train with ``engine.train.loop.train`` (the app's own loop) and test every epoch's
    checkpoint; the wall time counts only the time spent inside the training generator."""
    import tempfile

    import numpy as np
    import torch

    from engine.models.registry import class_scores, run_model
    from engine.train.checkpoint import load_checkpoint
    from engine.train.config import RunConfig
    from engine.train.events import Checkpointed, RunFinished

    cfg = RunConfig(data=spec, **recipe)
    x = torch.from_numpy(np.asarray(fs.x, dtype=np.float32))
    y = torch.from_numpy(np.asarray(fs.y, dtype=np.int64))
    test = fs.splits["test"]
    curve, wall, cpu = [], 0.0, 0.0
    with tempfile.TemporaryDirectory() as run_dir:
        gen = engine_train(cfg, run_dir, data=fs)
        while True:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                ev = next(gen)
            except StopIteration:
                break
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            if isinstance(ev, Checkpointed) and ev.reason == "epoch":
                model = load_checkpoint(ev.path).build()

                def forward(m, v):
                    out = run_model(m, v, cfg.steps, cfg.encoder, cfg.encoder_options)
                    return class_scores(out, cfg.loss, cfg.predict)[1]

                acc = _test_accuracy(model, forward, x[test], y[test])
                curve.append(_point(ev.epoch, wall, cpu, acc))
                if progress:
                    progress("app", curve[-1])
                if acc >= target or wall > limit_s:
                    gen.close()
                    break
            if isinstance(ev, RunFinished):
                break
    return {"recipe": cfg.to_dict(), "curve": curve}


def engine_train(cfg, run_dir, data=None):
    from engine.train.loop import train

    return train(cfg, run_dir, data=data)


def time_to_accuracy(
    spec: str = FSDD_SPEC,
    *,
    target: float = 0.97,
    reference_recipe: dict | None = None,
    app_recipe: dict | None = None,
    quick: bool = False,
    limit_s: float = 3600.0,
    progress=None,
) -> dict:
    """FSDD test accuracy against training wall time, reference recipe vs the app's.

    Each recipe trains until its test accuracy reaches ``target`` (or its epochs or ``limit_s``
    run out); the test accuracy is taken after every epoch, outside the clock. Heavy (minutes on
    two cores): not part of the default bench or of CI.
    """
    from engine.audio.features import FeatureConfig
    from engine.data.feature_set import load_feature_set
    from engine.train.memory import keep_freed_memory

    keep_freed_memory()  # as the app's training entry points do; the reference gains from it too
    ref = dict(REFERENCE_RECIPE, **(reference_recipe or {}))
    app = dict(APP_RECIPE, **(app_recipe or {}))
    if "amp" not in app and cpu_has_bf16():
        app["amp"] = "bf16"
    if quick:
        ref["epochs"] = app["epochs"] = 1
    fs = load_feature_set(spec, FeatureConfig())
    if quick:
        import numpy as np

        rng = np.random.default_rng(0)
        fs_splits = {
            k: np.sort(rng.permutation(v)[: max(1, len(v) // 10)]) for k, v in fs.splits.items()
        }
        from dataclasses import replace

        fs = replace(fs, splits=fs_splits)
    a = _app_curve(spec, fs, app, target, limit_s, progress)
    r = _reference_curve(fs, ref, target, limit_s, progress)

    def first_reach(curve):
        return next((p["wall_s"] for p in curve if p["test_acc"] >= target), None)

    t_ref, t_app = first_reach(r["curve"]), first_reach(a["curve"])
    ref_best = max((p["test_acc"] for p in r["curve"]), default=0.0)
    t_app_ref_best = next((p["wall_s"] for p in a["curve"] if p["test_acc"] >= ref_best), None)
    return {
        "data": spec,
        "target": target,
        "reference": {**r, "time_to_target_s": t_ref},
        "app": {**a, "time_to_target_s": t_app},
        "speedup_to_target": _ratio(t_ref, t_app),
        # when the reference never reaches the target: how soon the app matches its best
        "app_time_to_reference_best_s": t_app_ref_best,
        "reference_total_s": r["curve"][-1]["wall_s"] if r["curve"] else None,
        "best_test_acc": {
            "reference": max((p["test_acc"] for p in r["curve"]), default=None),
            "app": max((p["test_acc"] for p in a["curve"]), default=None),
        },
    }
