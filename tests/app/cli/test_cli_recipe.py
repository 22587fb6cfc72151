"""``snn-explorer train`` with the recipe, ``--twin`` and ``--cv`` on a small real manifest."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from app.cli import main
from engine.train.config import tomllib


def _manifest(folder, folds: int = 2):
    """12 short tones, 3 classes, 6 source recordings (groups) of 2 clips, ``folds`` folds."""
    folder.mkdir()
    rate = 8000
    t = np.arange(int(0.3 * rate)) / rate
    rows = ["path,label,group,fold"]
    for g in range(6):
        label = g % 3
        for k in range(2):
            y = 0.3 * np.sin(2 * np.pi * (400 * (label + 1) + 20 * k + 5 * g) * t)
            sf.write(folder / f"g{g}-{k}.wav", y.astype(np.float32), rate, subtype="PCM_16")
            rows.append(f"g{g}-{k}.wav,c{label},rec{g},{g % folds + 1}")
    (folder / "set.csv").write_text("\n".join(rows) + "\n")
    return f"csv:{folder / 'set.csv'}"


SMALL = ["--epochs", "1", "--batch", "4", "--steps", "2"]


def test_data_and_out_alone_train_with_the_recipe_and_twin_keeps_it(tmp_path, capsys):
    spec = _manifest(tmp_path / "data")
    assert main(["train", "--data", spec, "--out", str(tmp_path / "snn"), *SMALL]) == 0
    err = capsys.readouterr().err
    assert "recipe: proposed features: 20 MFCC, 8000 Hz, 0.5 s clips" in err
    # what the options override is said, with the values that are used
    assert "kept as you set them (they win over the above): batch = 4, epochs = 1, steps = 2" in err
    snn = tomllib.loads((tmp_path / "snn" / "config.toml").read_text())
    assert snn["model"] == "csnn" and snn["mixup"] > 0
    # a dozen clips leave too few for validation to choose an epoch: the last one is kept
    assert snn["select"] == "last" and snn["patience"] == 0
    assert snn["features"]["duration"] == 0.5 and snn["augment"]["spec_masks"] == 2
    assert main(["train", "--data", spec, "--out", str(tmp_path / "ann"), "--twin", *SMALL]) == 0
    assert "training the non-spiking twin cnn, all else equal" in capsys.readouterr().err
    ann = tomllib.loads((tmp_path / "ann" / "config.toml").read_text())
    assert ann["model"] == "cnn"
    assert {k: v for k, v in ann.items() if k != "model"} == {
        k: v for k, v in snn.items() if k != "model"
    }
    # --recipe off: plain defaults, but the features are still the data's and recorded
    assert main(["train", "--data", spec, "--out", str(tmp_path / "off"), "--recipe", "off"]) == 0
    off = tomllib.loads((tmp_path / "off" / "config.toml").read_text())
    assert off["mixup"] == 0 and off["select"] == "last" and off["features"]["duration"] == 0.5


def test_cv_uses_the_fold_column_and_prints_the_table(tmp_path, capsys):
    spec = _manifest(tmp_path / "data")
    out = tmp_path / "cv"
    argv = ["train", "--data", spec, "--out", str(out), "--model", "cnn", "--cv", "folds"]
    assert main([*argv, *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "mean test accuracy" in printed and "recall per class: " in printed
    summary = json.loads((out / "cv_summary.json").read_text())
    assert [f["name"] for f in summary["folds"]] == ["1", "2"]
    assert all((out / f"fold-{k}" / "best.pt").is_file() for k in (1, 2))
    again = ["train", "--data", spec, "--out", str(tmp_path / "cv3"), "--cv", "3", *SMALL]
    assert main(again) == 1  # the manifest has 2 folds
    assert "fold column has 2 folds, not 3" in capsys.readouterr().err
    assert main([*argv, *SMALL]) == 1
    assert "already holds a cross-validation" in capsys.readouterr().err
