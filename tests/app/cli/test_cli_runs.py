"""``snn-explorer train`` writes what other tools read; ``runs`` lists runs; ``report`` is headless.

A real one-epoch CSNN run on scikit-learn's bundled digits, written as MNIST IDX files.
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from app.cli import main
from engine.train.recorded_run import load_traces
from engine.train.run_exports import read_steps, read_table
from engine.train.run_folder import COMPARISON_COLUMNS, EPOCHS_CSV, TENSORBOARD_DIR, TRACES_FILE


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits_mnist_dir):
    """A folder with one CLI-trained CSNN run (TensorBoard on) and one plain CNN run."""
    base = tmp_path_factory.mktemp("runs")
    data = digits_mnist_dir
    root = base / "runs"
    common = ["--data", f"mnist:{data}", "--epochs", "1", "--limit", "400", "--quiet"]
    argv = ["train", *common, "--model", "csnn", "--steps", "3", "--out", str(root / "snn")]
    assert main([*argv, "--tensorboard"]) == 0
    assert main(["train", *common, "--model", "cnn", "--out", str(root / "cnn")]) == 0
    return root


def test_cli_train_records_traces_steps_and_tensorboard(runs):
    snn = runs / "snn"
    traces = load_traces(snn / TRACES_FILE)
    assert traces is not None and traces.epoch == 1
    assert traces.layers and all(L.spikes.shape[0] == 3 for L in traces.layers)
    assert sum(L.spike_count for L in traces.layers) > 0
    x, loss = read_steps(snn)
    assert len(x) > 1 and x.tolist() == list(range(1, len(x) + 1))
    assert np.isfinite(loss).all()
    assert read_table(snn / EPOCHS_CSV)["epoch"].tolist() == [1]
    assert list((snn / TENSORBOARD_DIR).glob("events.out.tfevents.*"))
    assert not (runs / "cnn" / TENSORBOARD_DIR).exists()  # only on request


def test_runs_lists_both_runs_as_json_and_as_a_table(runs, capsys):
    capsys.readouterr()
    assert main(["runs", str(runs), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"snn", "cnn"}
    assert rows["snn"]["spiking"] and not rows["cnn"]["spiking"]
    for r in rows.values():
        assert r["status"] == "completed" and r["epochs_done"] == 1
        assert 0 <= r["test_acc"] <= 1 and r["params"] > 0

    assert main(["runs", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == list(COMPARISON_COLUMNS[:3])
    assert sorted(line.split()[0] for line in lines[1:]) == ["cnn", "snn"]
    assert any("(SNN)" in line for line in lines[1:])


def test_runs_on_a_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "nowhere: no such folder" in err and err.count("\n") == 1


def test_report_writes_a_self_contained_html(runs, tmp_path, capsys, qapp):
    out = tmp_path / "report.html"
    assert main(["report", str(runs / "snn"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    html = out.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 3  # curves, confusion, tracked example
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "snn" in html


def test_report_of_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert "not a run folder" in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()
