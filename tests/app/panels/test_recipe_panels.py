"""Issue 14 in the GUI: the Data tab's proposal line, the Training tab's "From data" button,
and a cross-validation folder as one row of the runs table (real widgets, real files)."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from app.panels.data_views import SummaryView
from app.panels.training_runs import RunsPane
from app.panels.training_setup import SetupPane
from engine.audio.feature_proposal import propose_features
from engine.device import available_devices
from engine.train.config import RunConfig
from engine.train.cross_validation import cross_validate
from engine.train.recipe import size_training


def _tones(folder, seconds, rate, n=3):
    for c, f0 in (("low", 300), ("high", 1200)):
        (folder / c).mkdir(parents=True)
        t = np.arange(int(seconds * rate)) / rate
        for i in range(n):
            y = 0.3 * np.sin(2 * np.pi * (f0 + 20 * i) * t)
            sf.write(folder / c / f"{i}.wav", y.astype(np.float32), rate, subtype="PCM_16")


def test_summary_view_shows_the_proposal_line(qtbot):
    view = SummaryView()
    qtbot.addWidget(view)
    view.show()
    view.show_proposal(propose_features([5.0] * 10, [44_100] * 10))
    assert view.proposal.isVisible()
    assert view.proposal.text().startswith("Proposed features: 64-band log-mel, 22050 Hz, 5 s")
    view.show_proposal(None)  # an image data set
    assert not view.proposal.isVisible()


def test_setup_fills_in_the_proposed_features(qtbot, tmp_path):
    _tones(tmp_path / "set", 5.0, 22_050)
    pane = SetupPane(available_devices())
    qtbot.addWidget(pane)
    with qtbot.waitSignal(pane.featuresProposed, timeout=20_000):
        pane.data.setText(f"folder:{tmp_path / 'set'}")  # a new data set proposes by itself
    pane.epochs.setValue(7)
    pane.lr.setValue(0.01)  # not a recipe setting
    with qtbot.waitSignal(pane.featuresProposed, timeout=20_000) as sig:
        pane.propose.click()
    assert "5 s clips" in sig.args[0]
    cfg = pane.config()
    assert cfg.features["kind"] == "logmel" and cfg.features["sample_rate"] == 22_050
    assert cfg.features["duration"] == 5.0 and cfg.features["n_fft"] == 512
    # "From data" applies the whole recipe again, hand edits included; the rest stays
    sized = size_training(6)  # the recipe's epochs for these six clips
    assert cfg.features["hop_length"] == 256 and cfg.epochs == sized["epochs"] and cfg.lr == 0.01
    assert pane.propose.isEnabled()
    assert pane.jobs.stop_all(10_000)  # the job's thread has ended before the pane goes


def test_a_bad_spec_leaves_the_form_as_it_was(qtbot, tmp_path):
    pane = SetupPane(available_devices())
    qtbot.addWidget(pane)
    before = pane.config().features
    pane.data.setText(f"folder:{tmp_path / 'missing'}")
    pane.propose.click()
    qtbot.waitUntil(lambda: pane.propose.isEnabled(), timeout=20_000)
    assert "missing" in pane.propose.toolTip()
    assert pane.config().features == before
    assert pane.jobs.stop_all(10_000)


def test_runs_table_shows_a_cross_validation_as_one_row(qtbot, tmp_path):
    _tones(tmp_path / "set", 0.3, 8000, n=4)
    cfg = RunConfig(
        data=f"folder:{tmp_path / 'set'}",
        model="cnn",
        epochs=1,
        batch=4,
        model_options={"channels": [4, 8], "kernels": [3, 3]},
    )
    gen = cross_validate(cfg, tmp_path / "runs" / "my-cv", 2)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            summary = done.value
            break
    pane = RunsPane(str(tmp_path / "runs"))
    qtbot.addWidget(pane)
    pane.refresh()
    assert pane.table.rowCount() == 1  # the fold runs are inside the CV folder, not rows
    name = pane.table.item(0, 0).text()
    assert name.startswith("my-cv (2-fold mean, sd ")
    assert pane.table.item(0, 2).text() == "cv done"
    assert pane.table.item(0, 5).text() == f"{100 * summary['mean_test_acc']:.1f}%"
