"""Cross-validation folds and summaries on real manifests and real (short) training runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from engine.data.specs import open_source
from engine.errors import ConfigError
from engine.train.config import RunConfig
from engine.train.cross_validation import cross_validate, fold_plan, parse_cv, summary_lines
from engine.train.cv_folder import cv_row, list_cvs


def _manifest(tmp_path, with_fold: bool, n_groups: int = 12, per_group: int = 3):
    """A CSV of short real tones: 3 classes, ``n_groups`` source recordings of 3 clips each."""
    audio = tmp_path / "audio"
    audio.mkdir()
    rows = ["path,label,group" + (",fold" if with_fold else "")]
    rate = 8000
    t = np.arange(int(0.3 * rate)) / rate
    for g in range(n_groups):
        label = g % 3
        for k in range(per_group):
            y = 0.3 * np.sin(2 * np.pi * (400 * (label + 1) + 15 * k + 3 * g) * t)
            name = f"audio/g{g}-{k}.wav"
            sf.write(tmp_path / name, y.astype(np.float32), rate, subtype="PCM_16")
            fold = f",{g % 4 + 1}" if with_fold else ""
            rows.append(f"{name},c{label},rec{g}{fold}")
    path = tmp_path / "set.csv"
    path.write_text("\n".join(rows) + "\n")
    return f"csv:{path}"


def _check_disjoint_groups(source, plan):
    groups = np.array([it.group for it in source.items], dtype=object)
    everything = set(range(len(source.items)))
    for fold in plan:
        parts = [set(groups[fold.train]), set(groups[fold.val]), set(groups[fold.test])]
        assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
        assert set(fold.train) | set(fold.val) | set(fold.test) == everything
        assert len(fold.val) > 0
    tests = np.concatenate([f.test for f in plan])
    assert sorted(tests) == sorted(everything)  # each item is tested exactly once


def test_k_folds_never_split_a_group(tmp_path):
    source = open_source(_manifest(tmp_path, with_fold=False, n_groups=9, per_group=2))
    plan = fold_plan(source, 3, seed=1)
    assert len(plan) == 3
    _check_disjoint_groups(source, plan)
    labels = source.labels()
    for fold in plan:  # stratified: every class in every test fold
        assert set(labels[fold.test]) == {0, 1, 2}


def test_the_fold_column_is_honoured(tmp_path):
    source = open_source(_manifest(tmp_path, with_fold=True))
    assert {it.fold for it in source.items} == {"1", "2", "3", "4"}
    plan = fold_plan(source, "folds")
    assert [f.name for f in plan] == ["1", "2", "3", "4"]
    for fold in plan:
        assert {source.items[i].fold for i in fold.test} == {fold.name}
        assert fold.name not in {source.items[i].fold for i in fold.train}
    _check_disjoint_groups(source, plan)
    assert len(fold_plan(source, 4)) == 4
    with pytest.raises(ConfigError, match="fold column has 4 folds, not 5"):
        fold_plan(source, 5)


def test_kitchen20_folds_match_its_manifest():
    from conftest import SHARED, need

    source = open_source(f"csv:{need(SHARED / 'kitchen20')}/kitchen20.csv")
    plan = fold_plan(source, "folds")
    assert [f.name for f in plan] == ["1", "2", "3", "4", "5"]
    _check_disjoint_groups(source, plan)


def test_fsdd_leaves_one_speaker_out(fsdd_dir):
    source = open_source(f"fsdd:{fsdd_dir}")
    plan = fold_plan(source, "speakers")
    speakers = sorted({it.group for it in source.items})
    assert [f.name for f in plan] == speakers and len(plan) == 6
    _check_disjoint_groups(source, plan)


def test_bad_cv_values_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="at least 2 folds"):
        parse_cv("1")
    with pytest.raises(ConfigError, match="give a number of folds"):
        parse_cv("often")
    source = open_source(_manifest(tmp_path, with_fold=False))
    with pytest.raises(ConfigError, match="needs a manifest with a fold column"):
        fold_plan(source, "folds")


def test_summary_is_the_mean_and_sd_of_the_fold_runs(tmp_path):
    (tmp_path / "data").mkdir()
    spec = _manifest(tmp_path / "data", with_fold=False, n_groups=8, per_group=2)
    cfg = RunConfig(
        data=spec,
        model="cnn",
        epochs=1,
        batch=4,
        model_options={"channels": [4, 8], "kernels": [3, 3]},
    )
    out = tmp_path / "cv"
    gen = cross_validate(cfg, out, 2)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            summary = done.value
            break
    folds = []
    for k in (1, 2):
        metrics = json.loads((out / f"fold-{k}" / "metrics.json").read_text())
        folds.append(metrics)
        assert (out / f"fold-{k}" / "config.toml").read_text().count("[features]") == 1
    accs = [m["test"]["accuracy"] for m in folds]
    saved = json.loads((out / "cv_summary.json").read_text())
    assert saved["mean_test_acc"] == pytest.approx(np.mean(accs))
    assert saved["std_test_acc"] == pytest.approx(np.std(accs, ddof=1))
    assert [f["test_acc"] for f in saved["folds"]] == pytest.approx(accs)
    conf = sum(np.asarray(m["test"]["confusion"]) for m in folds)
    recall = np.diag(conf) / conf.sum(axis=1)
    assert list(saved["recall"].values()) == pytest.approx(list(recall))
    assert summary["mean_test_acc"] == saved["mean_test_acc"]
    assert any("mean test accuracy" in line for line in summary_lines(summary))
    # the runs table's one row for the whole cross-validation
    (cv,) = list_cvs(tmp_path)
    row = cv_row(cv)
    assert row.test_acc == pytest.approx(np.mean(accs)) and row.status == "cv done"
    with pytest.raises(ConfigError, match="already holds a cross-validation"):
        next(cross_validate(cfg, out, 2))
