"""The Training tab with real widgets and real training on a slice of FSDD (or sklearn digits).

Start from the tab, watch progress and plots fill, stop mid-epoch, reopen the run from disk;
open a run the ``train`` command wrote; export plots, checkpoint and report; the set-up pane
round-trips the TOML the ``train`` command reads.
"""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt

from app.cli import main as cli_main
from app.context import AppContext
from app.panels.training import TrainingPanel
from engine.train.checkpoint import load_checkpoint
from engine.train.config import RunConfig, load_config
from engine.train.recorded_run import fsdd_slice
from engine.train.run_folder import read_run

CSNN = {"model": "csnn", "steps": 8, "batch": 16, "epochs": 3, "seed": 1}


@pytest.fixture
def fsdd_spec(fsdd_dir, tmp_path_factory):
    """200 FSDD clips (2 speakers x 10 digits x takes 3-12) in a folder shared by this session,
    so their features are computed once."""
    return fsdd_slice(fsdd_dir, tmp_path_factory.getbasetemp() / "fsdd_slice200")


@pytest.fixture
def panel(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    context = AppContext(settings)
    p = TrainingPanel(context)
    qtbot.addWidget(p)
    p.runs.set_folder(str(tmp_path / "runs"))
    p.resize(1280, 820)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.shutdown()


def _curve_y(curve) -> np.ndarray:
    y = curve.getData()[1]
    return np.asarray([] if y is None else y)


def test_train_from_the_tab_stop_mid_epoch_and_reopen(panel, qtbot, fsdd_spec, tmp_path):
    runs_seen = []
    panel.context.runChanged.connect(runs_seen.append)
    panel.setup.set_config(RunConfig(data=fsdd_spec, **CSNN))
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    handle = panel.worker
    assert handle is not None and panel.is_running()
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    with qtbot.waitSignal(handle.progress, timeout=120_000):
        pass  # progress signals arrive on the GUI thread
    h = panel.history

    def in_second_epoch():
        assert h.traces is not None and h.traces.epoch >= 1
        assert h.last_step is not None and h.last_step.epoch == 2 and h.last_step.step >= 2

    qtbot.waitUntil(in_second_epoch, timeout=240_000)
    qtbot.wait(100)  # one more redraw tick
    assert panel.events_seen > 10 and panel.redraw_count > 0
    # the plots hold the run's data
    assert _curve_y(panel.curves.step_curve).size == len(h.step_loss) > 9
    assert np.all(np.isfinite(_curve_y(panel.curves.smooth_curve)))
    assert _curve_y(panel.curves.val_acc_curve).size == 1
    assert set(panel.curves.rate_curves) >= {"lif1", "lif2"}
    assert panel.confusion.image.image is not None and panel.confusion.table.rowCount() == 10
    assert int(np.asarray(panel.confusion.confusion).sum()) == 16  # the validation examples
    rows = panel.traces.rows
    assert len(rows) == len(h.traces.layers) >= 3
    assert rows[0].image.image.shape[1] == CSNN["steps"]  # raster: neurons x time steps
    assert _curve_y(rows[0].threshold).tolist() == [1.0, 1.0]
    assert panel.progress.value() > 0 and "epoch 2/3" in panel.progress.format()
    assert "samples/s" in panel.progress.format()

    # Stop: the thread ends soon, the checkpoint holds the half-done epoch
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=30_000)
    latency = panel.stop_latency_s
    print(f"stop latency {latency:.3f} s")
    assert latency is not None and latency < 3.0  # the goal is under 1 s
    assert not handle.thread.isRunning()
    assert h.finished is not None and h.finished.status == "stopped"
    run_dir = h.run_dir
    ckpt = load_checkpoint(f"{run_dir}/checkpoint.pt")
    assert ckpt.state["epoch"] == 1 and 1 <= ckpt.state["batch"] < h.steps_per_epoch
    assert panel.resume_button.isEnabled() and panel.start_button.isEnabled()
    assert runs_seen and runs_seen[-1] == run_dir
    assert panel.context.checkpoint.startswith(run_dir)
    assert read_run(run_dir).status == "stopped"
    assert [r.path for r in panel.runs.runs] == [run_dir]

    # reopen the run from disk in a fresh tab
    other = TrainingPanel(
        AppContext(QSettings(str(tmp_path / "o.ini"), QSettings.Format.IniFormat))
    )
    qtbot.addWidget(other)
    other.runs.set_folder(str(tmp_path / "runs"))
    assert other.runs.table.rowCount() == 1
    other.runs.table.selectRow(0)
    qtbot.mouseClick(other.runs.open_button, Qt.MouseButton.LeftButton)
    o = other.history
    assert o.run_dir == run_dir and o.status == "stopped" and len(o.epochs) == 1
    np.testing.assert_allclose(o.epoch_column("val_acc"), h.epoch_column("val_acc"))
    assert _curve_y(other.curves.val_acc_curve).size == 1
    assert other.traces.traces is not None and other.traces.traces.epoch == 1
    assert other.setup.config().steps == CSNN["steps"]
    assert other.resume_button.isEnabled()


def test_a_cli_run_opens_in_the_tab_and_exports(panel, qtbot, fsdd_spec, tmp_path):
    run_dir = tmp_path / "runs" / "cli-cnn"
    code = cli_main(
        ["train", "--data", fsdd_spec, "--model", "cnn", "--epochs", "2", "--batch", "32"]
        + ["--seed", "0", "--out", str(run_dir), "--quiet"]
    )
    assert code == 0
    panel.runs.refresh()
    assert [r.name for r in panel.runs.runs] == ["cli-cnn"]
    cells = [panel.runs.table.item(0, j).text() for j in range(panel.runs.table.columnCount())]
    info = read_run(run_dir)
    assert cells[1] == "cnn" and cells[2] == "completed"
    assert cells[4] == f"{100 * info.metrics['best_val_acc']:.1f}%"
    assert len(panel.runs.curves) == 1  # ticked for the overlay
    panel.runs.table.cellDoubleClicked.emit(0, 0)
    assert panel.history.run_dir == str(run_dir)
    assert _curve_y(panel.curves.val_acc_curve).size == 2
    assert panel.confusion.confusion.sum() == info.metrics["test"]["n"]
    assert panel.traces.traces is None  # an ANN has no spike traces
    assert panel.context.checkpoint == str(run_dir / "best.pt")

    files = panel.files.export_plots(str(tmp_path / "plots"))
    names = {p.rsplit("/", 1)[1] for p in files}
    assert {"accuracy.png", "accuracy.svg", "accuracy.csv", "confusion_matrix.csv"} <= names
    csv = (tmp_path / "plots" / "accuracy.csv").read_text().splitlines()
    assert csv[0].startswith("train_x,train_y,validation_x,validation_y")
    assert len(csv) == 3  # header + 2 epochs

    ck, cfg = panel.files.export_checkpoint(str(tmp_path / "model.pt"))
    assert cfg.endswith("model.toml")
    assert load_checkpoint(ck).class_names == [str(d) for d in range(10)]
    assert load_config(cfg).model == "cnn"

    # Export model: the formats this ANN allows, then an ONNX file checked by onnxruntime
    panel.files.sync_model_menu()
    assert panel.model_actions["onnx"].isEnabled()
    assert not panel.model_actions["nir"].isEnabled()
    assert "not spiking" in panel.model_actions["nir"].toolTip()
    handle = panel.files.export_model("onnx", str(tmp_path / "model.onnx"))
    qtbot.waitUntil(lambda: panel.export_worker is None, timeout=120_000)
    assert not handle.thread.isRunning()
    assert (tmp_path / "model.onnx").stat().st_size > 1000
    assert any(line.strip().startswith("ok") for line in panel.history.log), panel.history.log

    html = open(panel.files.export_report(str(tmp_path / "report.html")), encoding="utf-8").read()
    assert "<table>" in html and "cli-cnn" in html
    assert f"{info.metrics['params']:,}" in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 4
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert 'src="http' not in html and "<script" not in html  # self-contained


def test_setup_round_trips_the_train_toml(panel, tmp_path):
    toml = tmp_path / "in.toml"
    toml.write_text(
        'data = "fsdd:/data/recordings"\nmodel = "csnn_avg"\nsteps = 30\nencoder = "rate"\n'
        'surrogate = "fast_sigmoid"\nlr = 0.001\nbatch = 48\nepochs = 7\nschedule = "step"\n'
        'class_weighting = "balanced_sampling"\ndevice = "cpu"\n'
        "[features]\nn_mfcc = 13\nn_mels = 32\n[model_options]\nchannels = [8, 16]\n"
        "[augment]\nspec_time_mask = 6\ncopies = 1\n"
    )
    panel.files.load_config_file(str(toml))
    s = panel.setup
    assert s.model.currentData() == "csnn_avg" and s.steps.value() == 30
    assert s.encoder.currentData() == "rate" and s.n_mfcc.value() == 13
    assert s.time_mask.value() == 6 and s.copies.value() == 1
    s.epochs.setValue(9)
    s.noise.setChecked(True)
    s.noise_snr.setValue(15.0)
    out = tmp_path / "out.toml"
    panel.files.save_config_file(str(out))
    back = load_config(out)
    assert back == s.config()
    assert back.epochs == 9 and back.steps == 30 and back.surrogate == "fast_sigmoid"
    assert back.schedule == "step"  # no widget for it: kept from the loaded file
    assert back.model_options == {"channels": [8, 16]}
    assert back.features["n_mfcc"] == 13 and back.features["n_mels"] == 32
    assert back.augment == {"spec_time_mask": 6, "copies": 1, "noise_snr_db": 15.0}
    panel.files.load_config_file(str(tmp_path / "absent.toml"))
    assert panel.message.isVisible() and "absent.toml" in panel.message.text()


def test_the_data_tabs_set_fills_the_data_field(panel):
    panel.context.set_dataset("folder:/some/sounds")
    assert panel.setup.data.text() == "folder:/some/sounds"
    panel.setup.data.setText("")
    panel.setup.use_dataset.click()
    assert panel.setup.data.text() == "folder:/some/sounds"


def test_the_setup_column_shows_the_whole_pane(panel, qtbot):
    """No field, button or spin-box arrow of the set-up pane is cut off, also after it grows."""
    column, pane = panel.setup_column, panel.setup

    def whole():
        visible = column.viewport().width()
        assert pane.minimumSizeHint().width() <= visible and pane.width() <= visible
        button = pane.propose  # "From data", at the right edge of its row
        assert button.mapTo(column.viewport(), button.rect().topRight()).x() < visible

    whole()
    assert column.width() < 0.4 * panel.width()  # the plots keep most of the window
    pane.propose.setText("From the data set's clips, again")  # a wider row
    qtbot.waitUntil(whole, timeout=2000)


def test_a_bad_data_spec_fails_with_one_line(panel, qtbot, tmp_path):
    panel.setup.set_config(RunConfig(data=f"fsdd:{tmp_path}/nowhere", epochs=1))
    panel.start()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=60_000)
    text = panel.message.text()
    assert panel.message.isVisible() and "nowhere" in text and "\n" not in text
    assert panel.start_button.isEnabled()


def test_ui_stays_responsive_while_training(qapp):
    """The benchmark behind ``snn-explorer bench``'s UI section, on sklearn digits."""
    from app.ui_bench import lateness_stats, measure_ui_lateness

    assert lateness_stats([0.0, 0.010, 0.025, 0.035], 10.0)[2] == pytest.approx(5.0)
    r = measure_ui_lateness(seconds=2.0, idle_seconds=0.5, model="fc_snn", steps=6)
    print(r)
    assert r.ticks > 20 and r.train_steps >= 1 and r.redraws >= 1
    assert np.isfinite([r.p50_ms, r.p95_ms, r.max_ms]).all()
    assert 0 <= r.p50_ms <= r.p95_ms <= r.max_ms
    assert r.device == "cpu" and r.stop_latency_s > 0


def test_an_empty_tab_says_what_to_do_and_has_nothing_to_export(panel, tmp_path):
    from app.panels.training_views import NO_RUN

    assert panel.progress.format() == NO_RUN and "press Start" in NO_RUN
    assert not panel.export_plots_button.isEnabled()
    assert not panel.report_button.isEnabled() and not panel.export_model_button.isEnabled()
