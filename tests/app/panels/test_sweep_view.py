"""The Sweep view of the Training tab with real widgets and a real sweep on scikit-learn's digits:
start from the view, watch the table and plots fill, stop mid-trial and continue, open a trial's
run in the Training tab, put the best config into the set-up pane."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt

from app.context import AppContext
from app.panels.training import TrainingPanel
from engine.train.config import RunConfig
from engine.train.recorded_run import digits_feature_set
from engine.train.sweep_space import parse_space
from engine.train.sweep_study import SweepSpec, read_spec

BASE = RunConfig(
    model="fc_snn", steps=4, epochs=2, batch=64, limit=400, model_options={"hidden": 32}
)
SPACE = {"lr": {"low": 3e-3, "high": 3e-2, "log": True}, "steps": {"choices": [3, 4]}}


@pytest.fixture(scope="module")
def digits():
    return digits_feature_set(size=8)


@pytest.fixture
def panel(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    p = TrainingPanel(AppContext(settings))
    qtbot.addWidget(p)
    p.resize(1280, 820)
    p.show()
    qtbot.waitExposed(p)
    p.tabs.setCurrentWidget(p.sweep)
    yield p
    p.shutdown()


def _cells(table, column: int) -> list[str]:
    return [table.item(r, column).text() for r in range(table.rowCount())]


def test_sweep_from_the_view_stop_continue_open_a_trial_and_use_the_best(
    panel, qtbot, tmp_path, digits
):
    view = panel.sweep
    spec = SweepSpec(BASE, parse_space(SPACE, BASE), str(tmp_path / "sweep"))
    handle = view.start(spec, 3, jobs=1, data=digits)
    assert handle is not None and view.is_running()
    assert not view.start_button.isEnabled() and view.stop_button.isEnabled()

    # stop in the middle of the first trial: it keeps a checkpoint and is queued again
    qtbot.waitUntil(lambda: 0 in view.rows and view.rows[0].epochs >= 1, timeout=120_000)
    assert view.table.rowCount() >= 1 and view.table.item(0, 1).text() == "running"
    qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=120_000)
    assert view.status.text().startswith("stopped")
    assert _cells(view.table, 1) == ["fail", "waiting"]

    # continue: the queued trial resumes the stopped one; three trials count in the end
    view.start(read_spec(spec.out), 3, data=digits)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=240_000)
    assert not view.message.isVisible(), view.message.text()
    states = _cells(view.table, 1)
    assert states[0] == "fail" and sum(s in ("complete", "pruned") for s in states) == 3
    header = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    assert header == ["trial", "state", "lr", "steps", "best val acc", "s"]
    assert all(c.endswith("%") for c in _cells(view.table, 4)[1:])

    # the plots hold the trials: a point per finished trial and parameter, a line per trial
    for key in ("lr", "steps"):
        xs, ys = view.scatter.plots[key][1].getData()
        assert len(xs) == 4 and np.all((ys >= 0) & (ys <= 1))  # the stopped one has a value
    drawn = [line for line in view.parallel.lines if line.getData()[0] is not None]
    assert len([line for line in drawn if len(line.getData()[0])]) == 4
    assert len(view.parallel.getPlotItem().getAxis("bottom")._tickLevels[0]) == 3
    s = view.summary
    if s.importances:
        assert list(view.importance.bars.opts["width"]) == list(s.importances.values())[::-1]
    else:
        assert view.importance.note.toPlainText()

    # double click a trial: its run opens in the Training tab's views
    row = next(i for i, text in enumerate(_cells(view.table, 1)) if text == "complete")
    item = view.table.item(row, 0)
    rect = view.table.visualItemRect(item)
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert not panel.message.isVisible(), panel.message.text()
    assert panel.history.run_dir == view.table.run_dir(row)
    assert panel.tabs.currentWidget() is panel.curves
    assert len(panel.history.epochs) >= 1

    # the best config goes into the set-up pane
    panel.setup.set_config(RunConfig(model="csnn", lr=0.5))
    qtbot.mouseClick(view.best_button, Qt.MouseButton.LeftButton)
    cfg = panel.setup.config()
    assert cfg.model == "fc_snn" and cfg.lr == pytest.approx(s.best_params["lr"], rel=1e-3)


def test_a_bad_space_in_the_form_is_shown_not_raised(panel, tmp_path):
    view = panel.sweep
    bad = tmp_path / "space.toml"
    bad.write_text("betta = {low = 0.5, high = 0.9}\n")
    view.space_file.setText(str(bad))
    view.out.setText(str(tmp_path / "sweep"))
    view.start_button.click()
    assert not view.is_running()
    assert view.message.isVisible() and "betta: unknown key" in view.message.text()
    view.open_sweep(str(tmp_path / "nowhere"))
    assert "no sweep here" in view.message.text()
