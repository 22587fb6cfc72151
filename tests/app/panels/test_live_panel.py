"""The Live tab without a microphone: it loads, says so, and classifies audio files."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.context import AppContext
from app.panels.live import LivePanel
from app.panels.live_controls import said
from app.plotting import export_plot
from engine.live.recording import save_clip


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_panel(qtbot, settings):
    made = []

    def make(checkpoint: str = ""):
        context = AppContext(settings)
        context.checkpoint = checkpoint
        panel = LivePanel(context)
        qtbot.addWidget(panel)
        panel.resize(1250, 800)
        panel.show()
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.shutdown()


def _wait_idle(qtbot, panel, timeout=30000):
    qtbot.waitUntil(lambda: not panel._busy(), timeout=timeout)
    qtbot.wait(100)  # the buffer's timer delivers the last events


def test_without_a_microphone_the_tab_says_so_and_classifies_files(
    no_sound_server, make_panel, qtbot, fsdd_checkpoint, fsdd_dir
):
    panel = make_panel()
    assert panel.devices == [] and panel.controls.device.count() == 0
    assert "No microphone found" in panel.controls.mic_status.text()
    assert not panel.controls.start.isEnabled() and not panel.controls.open_file.isEnabled()
    assert "No model loaded" in panel.controls.model_info.text()
    # the Training tab announces a checkpoint: the tab follows it
    panel.context.set_checkpoint(fsdd_checkpoint.path)
    assert panel.predictor is not None and "10 classes" in panel.controls.model_info.text()
    assert not panel.controls.start.isEnabled()  # still no microphone
    assert panel.controls.open_file.isEnabled()
    assert not panel.start()
    right = 0
    for name in ("3_theo_1.wav", "7_jackson_0.wav", "0_george_2.wav"):
        assert panel.classify_path(str(fsdd_dir / name))
        _wait_idle(qtbot, panel)
        pred = panel.last_prediction
        right += pred.class_name == name[0]
        heights = panel.views.bars.opts["height"]
        np.testing.assert_allclose(heights, pred.probs, atol=1e-6)
        # the class, or "unknown" under the tab's threshold (a weak guess is not named)
        said_name = said(pred, panel.controls.threshold.value())
        assert panel.views.heard.text().startswith(f"{name}: {said_name}  ({pred.class_name} ")
        assert panel.views.feat_image.image is not None
        assert panel.views.feat_image.image.shape == panel.predictor.feature_config.shape()
    assert right >= 2


def test_a_long_file_is_classified_window_by_window_and_sound_by_sound(
    no_sound_server, make_panel, qtbot, fsdd_checkpoint, fsdd_dir, tmp_path
):
    parts = []
    for name in ("4_lucas_0.wav", "9_nicolas_1.wav"):
        y, sr = sf.read(fsdd_dir / name, dtype="float32")
        parts += [np.zeros(int(0.6 * sr), np.float32), y]
    parts.append(np.zeros(int(0.6 * sr), np.float32))
    long_file = tmp_path / "two_digits.wav"
    sf.write(long_file, np.concatenate(parts), sr)
    panel = make_panel(fsdd_checkpoint.path)
    assert panel.classify_path(str(long_file))
    _wait_idle(qtbot, panel)
    sounds = panel.file_result
    assert [s.class_name for s in sounds] == ["4", "9"]
    times, _ = panel.views.hist_curves[0].getData()
    assert len(times) == len(panel.history) > 4
    assert len(panel.views.wave_curve.yData) == sum(len(p) for p in parts)  # the whole file


def test_dropping_a_checkpoint_then_an_audio_file(
    no_sound_server, make_panel, qtbot, fsdd_checkpoint, fsdd_dir
):
    panel = make_panel()
    panel.controls.follow_training.setChecked(False)
    panel.context.set_checkpoint(fsdd_checkpoint.path)
    assert panel.predictor is None  # not following the Training tab
    for path in (fsdd_checkpoint.path, str(fsdd_dir / "5_yweweler_2.wav")):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(path)])
        event = QDropEvent(
            QPointF(20, 20),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        panel.dropEvent(event)
    assert panel.predictor is not None
    _wait_idle(qtbot, panel)
    assert panel.last_prediction is not None and panel.last_prediction.class_name == "5"


def test_a_file_that_is_no_checkpoint_or_no_audio_gives_one_line(
    no_sound_server, make_panel, qtbot, fsdd_checkpoint, tmp_path
):
    bad = tmp_path / "model.pt"
    bad.write_text("not a checkpoint")
    panel = make_panel()
    assert not panel.load_checkpoint(str(bad))
    assert "not an snn-explorer checkpoint" in panel.controls.model_info.text()
    panel.load_checkpoint(fsdd_checkpoint.path)
    noise = tmp_path / "broken.wav"
    noise.write_bytes(b"RIFF1234WAVEfmt garbage")
    panel.classify_path(str(noise))
    _wait_idle(qtbot, panel)
    assert "broken.wav" in panel.controls.file_info.text()
    assert panel.controls.open_file.isEnabled()


def test_every_plot_exports_its_data(
    no_sound_server, make_panel, qtbot, fsdd_checkpoint, fsdd_dir, tmp_path
):
    panel = make_panel(fsdd_checkpoint.path)
    panel.classify_path(str(fsdd_dir / "2_lucas_3.wav"))
    _wait_idle(qtbot, panel)
    probs_csv = export_plot(panel.views.prob_plot, str(tmp_path / "probs.csv"))
    with open(probs_csv) as fh:
        rows = list(csv.reader(fh))
    values = np.array([float(r[1]) for r in rows[1:]])
    np.testing.assert_allclose(values, panel.last_prediction.probs, atol=1e-6)
    for name, plot in panel.views.plots().items():
        out = tmp_path / f"{name}.png"
        export_plot(plot, str(out))
        assert out.stat().st_size > 1000


def test_record_view_counts_deletes_and_hands_the_folder_to_training(
    no_sound_server, make_panel, qtbot, tmp_path
):
    out = tmp_path / "sounds"
    tone = (0.3 * np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440)).astype(np.float32)
    for label, n in (("yes", 3), ("no", 2)):
        for _ in range(n):
            save_clip(out, label, tone, 8000)
    panel = make_panel()
    view = panel.record
    view.folder.setText(str(out))
    view.refresh()
    counts = {
        view.counts.item(r, 0).text(): int(view.counts.item(r, 1).text())
        for r in range(view.counts.rowCount())
    }
    assert counts == {"no": 2, "yes": 3}
    view.counts.selectRow([view.counts.item(r, 0).text() for r in range(2)].index("yes"))
    assert view.class_name() == "yes" and view.clips.count() == 3
    view.clips.item(0).setSelected(True)
    qtbot.mouseClick(view.delete, Qt.MouseButton.LeftButton)
    assert view.clips.count() == 2 and len(list((out / "yes").glob("*.wav"))) == 2
    qtbot.mouseClick(view.train, Qt.MouseButton.LeftButton)
    assert panel.context.dataset_spec == f"folder:{out}"
    # no microphone: recording fails with the one-line reason, and the view stays usable
    view.label.setEditText("maybe")
    assert view.start_recording()
    qtbot.waitUntil(lambda: not view.busy(), timeout=10000)
    assert "no audio capture device" in view.progress.text()
    assert view.record.isEnabled()
    view.label.setEditText("../..")
    assert not view.start_recording() and "class name" in view.progress.text()


def test_settings_survive_a_restart(
    no_sound_server, make_panel, settings, fsdd_checkpoint, tmp_path
):
    panel = make_panel(fsdd_checkpoint.path)
    panel.controls.hop.setValue(0.4)
    panel.controls.window.setValue(0.8)
    panel.record.folder.setText(str(tmp_path / "mine"))
    panel.record.count.setValue(7)
    settings.beginGroup("live")
    panel.save_state(settings)
    settings.endGroup()
    again = make_panel()
    settings.beginGroup("live")
    again.restore_state(settings)
    settings.endGroup()
    assert again.controls.hop.value() == pytest.approx(0.4)
    assert again.controls.window_s() == pytest.approx(0.8)
    assert again.record.out_dir() == str(tmp_path / "mine") and again.record.count.value() == 7
    assert again.checkpoint == fsdd_checkpoint.path
