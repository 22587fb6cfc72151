"""The Training tab's "Processes / GPUs": a real 2-process torchrun job (gloo, CPU) started from
the tab on scikit-learn's 8x8 digits, followed through its run folder.

- the job is the command ``snn-explorer train --nproc 2`` runs; its epochs reach the tab's
  history while it runs, and the tab ends showing what the run folder holds;
- Stop ends torchrun and both ranks (none left alive), the tab returns to idle, and Resume
  continues the run in 2 processes;
- a job whose ranks fail shows their one-line error.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from app.context import AppContext
from app.panels.training import TrainingPanel
from app.panels.training_processes import ProcessJob, job_error
from app.process_tree import alive, snapshot
from engine.bench.data_parallel import write_digits_idx
from engine.train.config import RunConfig
from engine.train.events import EpochEnd, RunFinished
from engine.train.history import RunHistory
from engine.train.run_folder import read_run

BASE = dict(
    model="fc_snn",
    steps=4,
    batch=50,
    lr=0.005,
    seed=3,
    device="cpu",
    amp="off",
    model_options={"hidden": 32, "batchnorm": False, "readout_norm": False},
)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits_idx(tmp_path_factory.mktemp("digits-idx"))


@pytest.fixture
def panel(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    context = AppContext(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    p = TrainingPanel(context)
    qtbot.addWidget(p)
    p.runs.set_folder(str(tmp_path / "runs"))
    p.setup.nproc.setValue(2)
    p.resize(1280, 820)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.shutdown()


def _setup(panel, data: str, epochs: int) -> None:
    panel.setup.set_config(RunConfig.from_dict({**BASE, "data": data, "epochs": epochs}))


def test_a_two_process_job_fills_the_tab_from_its_run_folder(panel, qtbot, digits, tmp_path):
    _setup(panel, f"mnist:{digits}", epochs=3)
    seen = []  # (event, was the job still running) as the tab received them
    panel.start_button.click()
    job = panel.worker
    assert isinstance(job, ProcessJob) and panel.is_running()
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    i = job.command.index("torch.distributed.run")
    assert job.command[i - 1 : i + 4] == [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    job.progress.connect(lambda ev: seen.append((ev, job.is_running())))
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=120000)

    assert not panel.message.isVisible(), panel.message.text()
    epochs = [(ev, running) for ev, running in seen if isinstance(ev, EpochEnd)]
    assert [e.epoch for e, _ in epochs] == [1, 2, 3]
    assert epochs[0][1] is True  # the first epoch arrived while the job still ran
    assert isinstance(seen[-1][0], RunFinished) and seen[-1][0].status == "completed"
    # the tab shows what a reopened run folder shows: the same epochs and step losses
    h = panel.history
    disk = RunHistory.from_run(read_run(h.run_dir))
    assert [r["val_acc"] for r in h.epochs] == [r["val_acc"] for r in disk.epochs]
    assert [r["train_loss"] for r in h.epochs] == [r["train_loss"] for r in disk.epochs]
    assert h.step_x == disk.step_x and h.step_loss == disk.step_loss and len(h.step_x) > 3
    assert h.traces is not None and h.traces.epoch == 3
    assert panel.progress.text().startswith("completed: 3/3 epochs")
    assert h.finished.test_acc > 0.5
    xs, ys = panel.curves.plots()["accuracy"].listDataItems()[0].getData()
    assert len(xs) == 3
    assert panel.start_button.isEnabled() and panel.resume_button.isEnabled()
    assert alive(job.tree) == []


def test_stop_ends_every_rank_and_the_tab_returns_to_idle(panel, qtbot, digits):
    _setup(panel, f"mnist:{digits}", epochs=500)
    panel.start_button.click()
    job = panel.worker
    qtbot.waitUntil(lambda: len(panel.history.epochs) >= 1, timeout=120000)
    tree = snapshot(job.process.processId())
    assert len(tree) >= 3  # torchrun and its two ranks (each in a session of its own)
    panel.stop_button.click()
    assert not panel.stop_button.isEnabled()
    assert panel.progress.text().startswith("stopping")
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=30000)
    assert alive(tree) == []
    assert not panel.message.isVisible(), panel.message.text()
    assert panel.stop_latency_s is not None and panel.stop_latency_s < job.TERM_TIMEOUT_MS / 1000
    assert panel.start_button.isEnabled() and panel.resume_button.isEnabled()
    run = read_run(panel.history.run_dir)
    assert run.status == "unfinished"
    # Resume runs `train --resume --nproc 2` and shows only what the resumed job adds
    done = run.metrics["epochs_done"]
    panel.setup.epochs.setValue(done + 1)
    panel.resume_button.click()
    assert "--resume" in panel.worker.command
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=120000)
    assert not panel.message.isVisible(), panel.message.text()
    h = panel.history
    assert h.finished.status == "completed" and [r["epoch"] for r in h.epochs] == list(
        range(1, done + 2)
    )
    assert read_run(h.run_dir).status == "completed"


def test_closing_the_window_mid_job_ends_every_rank(panel, qtbot, digits):
    _setup(panel, f"mnist:{digits}", epochs=500)
    panel.start_button.click()
    job = panel.worker
    qtbot.waitUntil(lambda: len(panel.history.step_x) > 0, timeout=120000)
    tree = snapshot(job.process.processId())
    panel.shutdown()  # what the main window's close runs: blocks until the job ended
    assert not panel.is_running() and alive(tree) == []


def test_the_process_count_is_kept_in_the_settings(panel, tmp_path):
    s = QSettings(str(tmp_path / "kept.ini"), QSettings.Format.IniFormat)
    panel.save_state(s)
    panel.setup.nproc.setValue(1)
    panel.restore_state(s)
    assert panel.setup.nproc.value() == 2


def test_a_failing_job_shows_its_one_line_error(panel, qtbot, tmp_path):
    _setup(panel, f"mnist:{tmp_path / 'no-such-folder'}", epochs=1)
    panel.start_button.click()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=120000)
    text = panel.message.text()
    assert panel.message.isVisible() and "\n" not in text
    assert "no-such-folder" in text and "no such file or folder" in text


def test_job_error_picks_the_ranks_error_over_torchruns_report():
    lines = [
        "snn-explorer train: error: mnist:/x: no such file or folder /x",
        "Traceback (most recent call last):",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
        "============================================================",
    ]
    assert job_error(lines, 1, 2) == "mnist:/x: no such file or folder /x"
    crash = ["Traceback (most recent call last):", "RuntimeError: boom", "=" * 20]
    assert (
        job_error(crash, 1, 2) == "training in 2 processes failed (exit code 1): RuntimeError: boom"
    )
    assert job_error([], -1, 3) == "training in 3 processes failed (exit code -1)"
