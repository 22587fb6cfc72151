"""SHD-style spike trains: ``train --encoder spikes`` with a spiking FC model from the command
line, then the run opens in the Training tab (real widgets, offscreen)."""

from __future__ import annotations

import json

from fetchkit import write_shd
from PySide6.QtCore import QSettings

from app.cli import main
from app.context import AppContext
from app.panels.training import TrainingPanel


def test_fc_snn_trains_on_spikes_and_the_run_opens(tmp_path, qtbot, capsys):
    write_shd(tmp_path / "shd_train.h5", n=48, seed=1)
    write_shd(tmp_path / "shd_test.h5", n=16, seed=2)
    run = tmp_path / "run"
    argv = ["train", "--data", f"shd:{tmp_path}?bins=25&dt=0.02", "--model", "fc_snn"]
    argv += ["--encoder", "spikes", "--epochs", "1", "--batch", "16", "--out", str(run)]
    assert main([*argv, "--quiet"]) == 0
    capsys.readouterr()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["class_names"] == ["word0", "word1", "word2", "word3"]
    assert len(metrics["history"]) == 1 and 0 <= metrics["test"]["accuracy"] <= 1

    panel = TrainingPanel(AppContext(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)))
    qtbot.addWidget(panel)
    panel.open_run(str(run))
    assert not panel.message.isVisible() or panel.message.text() == ""
    assert panel.history.class_names == ["word0", "word1", "word2", "word3"]
    assert panel.setup.config().encoder == "spikes"
    panel.shutdown()
