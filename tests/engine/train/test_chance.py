"""A model no better than guessing is said so in one line (engine.train.chance), from a real run."""

from __future__ import annotations

import json
import math

import digitkit
import pytest

from engine.generators import run_to_end
from engine.train.chance import chance_warning, near_chance, warning_from_metrics
from engine.train.checkpoint import Predictor
from engine.train.config import RunConfig
from engine.train.loop import train


def test_near_chance_is_one_binomial_sd_or_ten_points_above_guessing():
    # 6 validation clips of 3 classes: sd = sqrt(1/3 * 2/3 / 6) = 0.192 -> up to 0.526
    assert near_chance(3 / 6, 6, 3) and not near_chance(4 / 6, 6, 3)
    # 85 clips of 20 classes: sd 0.024 < 0.10 -> up to 0.15
    assert near_chance(0.14, 85, 20) and not near_chance(0.16, 85, 20)
    assert not near_chance(math.nan, 6, 3) and not near_chance(0.3, 0, 3)


def _row(epoch, val_acc, dead_out=0.0):
    return {"epoch": epoch, "val_acc": val_acc, "dead_fractions": {"lif1": 0.2, "out": dead_out}}


def test_the_warning_names_the_split_the_cause_and_what_to_try():
    history = [_row(1, 0.8), _row(2, 1 / 3, dead_out=1.0)]
    w = chance_warning(
        n_classes=3,
        history=history,
        best_epoch=2,
        n_train=48,
        n_val=6,
        spiking=True,
        twin="cnn_gap",
    )
    assert w.startswith("this model is no better than guessing (validation 33 % of 6 clips")
    assert "output layer never fired" in w and "--twin, cnn_gap" in w and "16 per class" in w
    assert "\n" not in w
    # the kept epoch decides: epoch 1 was fine
    assert chance_warning(n_classes=3, history=history, best_epoch=1, n_val=6) is None
    # a silent output alone is said too, for spiking models only
    silent = [_row(1, 0.9, dead_out=1.0)]
    assert "never fired" in chance_warning(n_classes=3, history=silent, n_val=30, spiking=True)
    assert chance_warning(n_classes=3, history=silent, n_val=30, spiking=False) is None
    # a test split at chance is enough
    w = chance_warning(n_classes=4, history=[_row(1, 0.9)], n_val=40, test_acc=0.25, n_test=40)
    assert "test 25 % of 40 clips" in w


def test_metrics_of_a_last_epoch_run_are_judged_on_the_last_epoch():
    m = {
        "class_names": ["a", "b"],
        "history": [_row(1, 0.95), _row(2, 0.5)],
        "best_epoch": 1,
        "n_val": 20,
        "config": {"select": "last"},
        "model": "cnn",
    }
    assert "validation 50 % of 20 clips" in warning_from_metrics(m)
    assert warning_from_metrics({**m, "config": {"select": "best_val"}}) is None


@pytest.fixture(scope="module")
def shuffled_digits():
    """scikit-learn's digits with labels shuffled: nothing to learn, the run ends at chance."""
    return digitkit.digit_spectra(3, (300, 100, 100), shuffle=True)


def test_a_run_at_chance_says_so_in_metrics_log_and_checkpoint(shuffled_digits, tmp_path):
    cfg = RunConfig(
        model="csnn",
        steps=4,
        epochs=2,
        batch=50,
        amp="off",
        model_options={"channels": [4, 8], "kernels": [3, 3], "padding": "same"},
    )
    result = run_to_end(train(cfg, tmp_path / "run", data=shuffled_digits))
    assert result.test_acc < 0.5  # shuffled labels: nothing to learn
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["warning"] and "no better than guessing" in metrics["warning"]
    assert "warning: " + metrics["warning"] in (tmp_path / "run" / "log.txt").read_text()
    finished = [
        json.loads(line)
        for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()
        if "RunFinished" in line
    ]
    assert finished[-1]["warning"] == metrics["warning"]
    note = Predictor.from_checkpoint(tmp_path / "run" / "best.pt").chance_note
    assert "no better than guessing" in note and "'unknown'" in note
