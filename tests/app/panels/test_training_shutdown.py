"""Closing the main window while the Training tab trains: the worker stops, its thread ends,
and the run folder keeps a valid checkpoint that the ``train`` command resumes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from app.cli import main as cli_main
from app.main_window import MainWindow
from engine.train.checkpoint import load_checkpoint
from engine.train.config import RunConfig
from engine.train.recorded_run import fsdd_slice
from engine.train.run_folder import is_run_dir, read_run


@pytest.fixture
def fsdd_spec(fsdd_dir, tmp_path_factory):
    """The 200-clip FSDD slice the panel tests use (same folder: features computed once)."""
    return fsdd_slice(fsdd_dir, tmp_path_factory.getbasetemp() / "fsdd_slice200")


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.show_tab("training")
    w.show()
    qtbot.waitExposed(w)
    return w


def test_closing_mid_training_leaves_no_thread_and_a_resumable_checkpoint(
    window, qtbot, qtlog, fsdd_spec, tmp_path
):
    panel = window.panels["training"]
    run_dir = tmp_path / "runs" / "closed"
    cfg = RunConfig(data=fsdd_spec, model="csnn", steps=8, batch=16, epochs=1, seed=2)
    handle = panel.start(cfg, run_dir)
    assert handle is not None
    qtbot.waitUntil(lambda: len(panel.history.step_x) >= 2, timeout=240_000)
    assert handle.thread.isRunning()

    window.close()  # closeEvent -> panel.shutdown() -> stop and wait for the thread

    assert not handle.thread.isRunning() and handle.thread.isFinished()
    assert not panel.is_running()
    assert not [r for r in qtlog.records if "QThread" in r.message]
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt.state["epoch"] == 0 and ckpt.state["batch"] >= 2  # stopped inside epoch 1
    assert read_run(run_dir).status == "stopped"

    # the command line finishes the run the window left
    assert cli_main(["train", "--out", str(run_dir), "--resume", "--quiet"]) == 0
    info = read_run(run_dir)
    assert info.status == "completed" and info.metrics["epochs_done"] == 1
    assert info.metrics["test"]["n"] == 40


def test_closing_while_features_are_computed_stops_at_once(window, qtbot, fsdd_dir, tmp_path):
    panel = window.panels["training"]
    # a fresh folder: its features are not cached, so the run spends a while preparing
    spec = fsdd_slice(fsdd_dir, tmp_path / "fresh", speakers=3, takes=range(5, 25))
    run_dir = tmp_path / "runs" / "preparing"
    handle = panel.start(RunConfig(data=spec, model="cnn", epochs=1), run_dir)
    qtbot.waitUntil(lambda: panel.history.status == "preparing", timeout=60_000)
    window.close()
    assert not handle.thread.isRunning() and handle.thread.isFinished()
    assert not is_run_dir(run_dir)  # nothing was trained, so there is nothing to resume
