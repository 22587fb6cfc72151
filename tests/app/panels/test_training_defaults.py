"""Issue 14, items 1 and 5 in the Training tab: choosing data fills in the recommended network.

Real widgets offscreen, real WAV folders written here (5-s 22,050-Hz clips: log-mel and
scnn_gap; 1-s 8-kHz clips: MFCC and the CSNN), real FSDD when present, a real one-epoch run.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QSettings, Qt

from app.context import AppContext
from app.panels.training import TrainingPanel
from app.panels.training_defaults import WARN_STYLE
from app.panels.training_setup import MODEL_TITLES, SetupPane
from engine.device import available_devices
from engine.models.registry import MODELS
from engine.train.config import RunConfig, load_config, save_config, tomllib
from engine.train.recipe import CROP_S, SPECTROGRAM_STEPS, size_training

WAIT_MS = 30_000
#: how the recipe sizes training for the six clips of each set written here
SIX = size_training(6)


def _tones(folder, seconds: float, rate: int, n: int = 3) -> str:
    """Two classes of ``n`` tones each; returns the folder's data spec."""
    t = np.arange(int(seconds * rate)) / rate
    for c, f0 in (("low", 300), ("high", 1200)):
        (folder / c).mkdir(parents=True)
        for i in range(n):
            y = 0.3 * np.sin(2 * np.pi * (f0 + 20 * i) * t)
            sf.write(folder / c / f"{i}.wav", y.astype(np.float32), rate, subtype="PCM_16")
    return f"folder:{folder}"


@pytest.fixture
def long_set(tmp_path):
    return _tones(tmp_path / "long", 5.0, 22_050)


@pytest.fixture
def short_set(tmp_path):
    return _tones(tmp_path / "short", 1.0, 8000)


@pytest.fixture
def pane(qtbot):
    p = SetupPane(available_devices())
    qtbot.addWidget(p)
    p.show()
    qtbot.waitExposed(p)
    yield p
    assert p.jobs.stop_all(10_000)  # the proposal's thread has ended before the pane goes


def _choose(qtbot, pane, spec: str) -> None:
    """Set the data spec as the buttons do and wait for the recipe to be filled in."""
    with qtbot.waitSignal(pane.featuresProposed, timeout=WAIT_MS):
        pane.data.setText(spec)


def test_choosing_data_fills_in_the_recommended_network(qtbot, pane, long_set, short_set):
    _choose(qtbot, pane, long_set)  # nothing pressed
    cfg = pane.config()
    f = cfg.features
    assert (f["kind"], f["sample_rate"], f["duration"]) == ("logmel", 22_050, 5.0)
    assert (f["n_fft"], f["hop_length"], f["n_mels"]) == (512, 256, 64)
    assert (cfg.model, cfg.steps, cfg.crop_s) == ("scnn_gap", SPECTROGRAM_STEPS, CROP_S)
    assert cfg.mixup > 0 and (cfg.select, cfg.epochs, cfg.batch) == (
        SIX["select"],
        SIX["epochs"],
        SIX["batch"],
    )
    assert pane.chosen.isVisible()
    assert "5 s clips" in pane.chosen.text() and "scnn_gap" in pane.chosen.text()
    # another data set: its own recipe, and nothing of the first one's (no crops of 1-s clips)
    _choose(qtbot, pane, short_set)
    cfg = pane.config()
    f = cfg.features
    assert (f["kind"], f["sample_rate"], f["duration"], f["n_mfcc"]) == ("mfcc", 8000, 1.0, 20)
    assert (cfg.model, cfg.steps, cfg.crop_s) == ("csnn", RunConfig().steps, 0.0)
    assert "csnn" in pane.chosen.text()


def test_a_hand_edited_field_survives_a_later_proposal(qtbot, pane, long_set, short_set):
    _choose(qtbot, pane, short_set)
    pane.duration.setValue(2.0)  # edited by hand
    pane.epochs.setValue(3)
    pane.model.setCurrentIndex(pane.model.findData("csnn_avg"))
    _choose(qtbot, pane, long_set)
    cfg = pane.config()
    assert cfg.features["kind"] == "logmel" and cfg.features["sample_rate"] == 22_050
    assert cfg.features["duration"] == 2.0 and cfg.epochs == 3 and cfg.model == "csnn_avg"
    assert "- kept as you set them: epochs, features.duration, model" in pane.chosen.text()
    # "From data" applies everything again
    with qtbot.waitSignal(pane.featuresProposed, timeout=WAIT_MS):
        qtbot.mouseClick(pane.propose, Qt.MouseButton.LeftButton)
    cfg = pane.config()
    assert (cfg.features["duration"], cfg.epochs, cfg.model) == (5.0, SIX["epochs"], "scnn_gap")
    assert pane.defaults.touched == set()


def test_twin_gives_the_twin_with_the_same_other_settings(qtbot, pane, long_set, short_set):
    _choose(qtbot, pane, long_set)
    spiking = pane.config()
    qtbot.mouseClick(pane.twin, Qt.MouseButton.LeftButton)
    twin = pane.config()
    assert twin.model == "cnn_gap"
    assert twin.replace(model=spiking.model) == spiking  # everything else identical
    assert "- training scnn_gap's non-spiking twin cnn_gap, all else equal" in pane.chosen.text()
    # ticked, a new data set gets the twin of its own recommended model
    _choose(qtbot, pane, short_set)
    assert pane.config().model == "cnn" and pane.twin.isChecked()
    qtbot.mouseClick(pane.twin, Qt.MouseButton.LeftButton)
    assert pane.config().model == "csnn" and "model" not in pane.defaults.touched
    # a model without a twin, picked by hand: the box cannot be ticked
    pane.model.setCurrentIndex(pane.model.findData("cnn"))
    assert not pane.twin.isEnabled() and not pane.twin.isChecked()


def test_a_loaded_config_wins_over_the_proposal(qtbot, pane, long_set, short_set, tmp_path):
    path = tmp_path / "mine.toml"
    mine = RunConfig(data=short_set, model="csnn", epochs=2, features={"duration": 1.0})
    save_config(mine, path)
    pane.set_config(load_config(path))  # as "Load config..." does
    pane.data.setText(long_set)
    qtbot.wait(300)
    assert not pane.jobs.busy("propose")
    cfg = pane.config()
    assert (cfg.model, cfg.epochs, cfg.features["duration"]) == ("csnn", 2, 1.0)
    assert "loaded config" in pane.chosen.text()
    with qtbot.waitSignal(pane.featuresProposed, timeout=WAIT_MS):
        qtbot.mouseClick(pane.propose, Qt.MouseButton.LeftButton)
    assert pane.config().model == "scnn_gap" and not pane.defaults.kept


def test_typing_a_spec_proposes_when_editing_ends(qtbot, pane, short_set):
    pane.data.setFocus()
    qtbot.keyClicks(pane.data, short_set)
    assert not pane.jobs.busy("propose")  # not at every key
    with qtbot.waitSignal(pane.featuresProposed, timeout=WAIT_MS):
        qtbot.keyClick(pane.data, Qt.Key.Key_Return)
    assert pane.config().model == "csnn"


def test_a_bad_spec_says_why_and_leaves_the_form(qtbot, pane, tmp_path):
    before = pane.config()
    pane.data.setText(f"folder:{tmp_path / 'missing'}")
    qtbot.waitUntil(lambda: pane.propose.isEnabled(), timeout=WAIT_MS)
    assert "missing" in pane.chosen.text()
    assert pane.config() == before.replace(data=f"folder:{tmp_path / 'missing'}")


def test_the_line_warns_when_a_fixed_length_throws_most_clips_away(qtbot, pane, tmp_path):
    _choose(qtbot, pane, _tones(tmp_path / "long", 25.0, 8000, n=2))  # capped at 10 s
    assert pane.config().features["duration"] == 10.0
    assert "warning: 100 % of the clips are longer than 20 s" in pane.chosen.text()
    assert WARN_STYLE in pane.chosen.styleSheet()


def test_every_model_has_a_readable_title():
    assert set(MODELS) <= set(MODEL_TITLES)


@pytest.fixture
def panel(qtbot, tmp_path):
    context = AppContext(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    p = TrainingPanel(context)
    qtbot.addWidget(p)
    p.runs.set_folder(str(tmp_path / "runs"))
    yield p
    p.shutdown()


def test_the_started_run_records_the_proposed_features(qtbot, panel, tmp_path):
    spec = _tones(tmp_path / "tiny", 3.0, 8000, n=3)
    panel.context.set_dataset(spec)  # the Data tab opened it
    with qtbot.waitSignal(panel.setup.featuresProposed, timeout=WAIT_MS):
        qtbot.mouseClick(panel.setup.use_dataset, Qt.MouseButton.LeftButton)
    proposed = panel.setup.config()
    panel.setup.epochs.setValue(1)
    panel.setup.batch.setValue(2)
    with qtbot.waitSignal(panel.runEnded, timeout=120_000) as ended:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    with open(f"{ended.args[0]}/config.toml", "rb") as fh:
        written = tomllib.load(fh)
    assert written["features"] == proposed.features
    assert written["model"] == "scnn_gap" and written["crop_s"] == CROP_S
    assert written["epochs"] == 1 and written["mixup"] == proposed.mixup


def test_hand_edits_survive_a_restart(qtbot, panel, tmp_path, short_set, long_set):
    with qtbot.waitSignal(panel.setup.featuresProposed, timeout=WAIT_MS):
        panel.setup.data.setText(short_set)
    panel.setup.epochs.setValue(4)
    settings = QSettings(str(tmp_path / "saved.ini"), QSettings.Format.IniFormat)
    panel.save_state(settings)
    again = TrainingPanel(panel.context)
    qtbot.addWidget(again)
    again.restore_state(settings)
    assert again.setup.config() == panel.setup.config()
    with qtbot.waitSignal(again.setup.featuresProposed, timeout=WAIT_MS):
        again.setup.data.setText(long_set)
    assert again.setup.config().epochs == 4 and again.setup.config().model == "scnn_gap"
    again.shutdown()


def test_fsdd_gets_the_speech_settings(qtbot, panel, fsdd_dir):
    with qtbot.waitSignal(panel.setup.featuresProposed, timeout=WAIT_MS):
        panel.context.set_dataset(f"fsdd:{fsdd_dir}")  # the Training tab follows the Data tab
    cfg = panel.setup.config()
    assert cfg.model == "csnn" and cfg.features["kind"] == "mfcc"
    assert (cfg.features["sample_rate"], cfg.features["duration"]) == (8000, 1.0)
