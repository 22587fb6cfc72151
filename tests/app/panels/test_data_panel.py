"""The Data tab with real widgets, real files and real worker threads."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QSettings

from app.context import AppContext
from app.panels.data import DataPanel


def make_folder(root, counts=(4, 6, 3), sr=8000):
    names = [f"{i + 1:03d} - {n}" for i, n in enumerate(("Dog bark", "Siren", "Speech"))]
    rng = np.random.default_rng(0)
    for name, n in zip(names, counts):
        (root / name).mkdir(parents=True)
        for i in range(n):
            t = np.arange(int(sr * rng.uniform(0.3, 0.9))) / sr
            y = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 900) * t) * np.hanning(len(t))
            sf.write(root / name / f"c{i}.wav", y.astype(np.float32), sr, subtype="PCM_16")
    (root / names[1] / "empty.wav").write_bytes(b"")
    return root, names


@pytest.fixture
def make_panel(qtbot, tmp_path):
    made = []

    def make():
        settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
        p = DataPanel(AppContext(settings))
        qtbot.addWidget(p)
        p.resize(1280, 800)
        p.show()
        made.append(p)
        return p

    yield make
    for p in made:
        p.shutdown()


def open_and_wait(qtbot, panel, spec):
    panel.open_spec(spec)
    qtbot.waitUntil(lambda: panel.screenshot_ready(), timeout=60000)


def test_empty_state_until_a_data_set_is_opened(make_panel):
    panel = make_panel()
    assert panel.stack.currentIndex() == 0
    assert panel.overview is None and not panel.play_button.isEnabled()


def test_folder_data_set_summary_chart_examples(qtbot, make_panel, tmp_path):
    root, names = make_folder(tmp_path / "set")
    panel = make_panel()
    with qtbot.waitSignal(panel.context.datasetChanged, timeout=60000) as sig:
        panel.open_spec(f"folder:{root}")
    qtbot.waitUntil(lambda: panel.screenshot_ready(), timeout=60000)
    assert sig.args == [f"folder:{root}"] and panel.context.dataset_spec == f"folder:{root}"
    assert panel.stack.currentIndex() == 1 and not panel.message.isVisible()
    table = panel.summary.table
    assert table.rowCount() == 3
    assert [table.item(r, 0).text() for r in range(3)] == names
    assert [int(table.item(r, 1).text()) for r in range(3)] == [4, 6, 3]
    assert "empty.wav: empty file" in panel.summary.skipped.item(0).text()
    assert "Skipped files: <b>1</b>" in panel.summary.skipped_label.text()
    # the chart's bars add up to each class's count
    total = sum(panel.chart.data[s].getData()[1] for s in ("train", "val", "test"))
    np.testing.assert_array_equal(total, [4, 6, 3])
    # up to 4 examples per class, each an MFCC of the form's shape
    assert len(panel.grid.cells) == 4 + 4 + 3
    assert all(img.image.shape == (20, 63) for _p, img, _pos in panel.grid.cells)


def test_feature_parameters_refeaturise_examples(qtbot, make_panel, tmp_path):
    root, _ = make_folder(tmp_path / "set")
    panel = make_panel()
    open_and_wait(qtbot, panel, f"folder:{root}")
    panel.form.n_mfcc.setValue(13)
    qtbot.waitUntil(
        lambda: panel.grid.cells and panel.grid.cells[0][1].image.shape == (13, 63), timeout=30000
    )
    panel.form.kind.setCurrentIndex(panel.form.kind.findData("logmel"))
    qtbot.waitUntil(lambda: panel.grid.cells[0][1].image.shape == (40, 63), timeout=30000)
    assert "Log-mel" in panel.grid.title.text()


def test_compute_features_with_progress_then_cache(qtbot, make_panel, tmp_path):
    root, _ = make_folder(tmp_path / "set")
    panel = make_panel()
    open_and_wait(qtbot, panel, f"folder:{root}")
    panel.form.compute.click()
    assert panel.form.cancel.isEnabled() and not panel.form.compute.isEnabled()
    qtbot.waitUntil(lambda: not panel.jobs.busy("features"), timeout=60000)
    fs = panel.feature_set
    assert fs is not None and fs.x.shape == (13, 1, 20, 63)
    assert panel.form.progress.maximum() == panel.form.progress.value() == 13
    assert "<b>13</b> examples" in panel.form.result.text()
    assert panel.form.compute.isEnabled() and not panel.form.cancel.isEnabled()
    panel.form.compute.click()  # second run: from the cache
    qtbot.waitUntil(lambda: not panel.jobs.busy("features"), timeout=60000)
    np.testing.assert_array_equal(panel.feature_set.x, fs.x)


def test_cancel_stops_feature_extraction(qtbot, make_panel, fsdd_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SNN_EXPLORER_CACHE", str(tmp_path / "cold-cache"))
    panel = make_panel()
    open_and_wait(qtbot, panel, f"fsdd:{fsdd_dir}")
    panel.form.compute.click()
    panel.form.cancel.click()
    qtbot.waitUntil(lambda: not panel.jobs.busy("features"), timeout=30000)
    assert panel.feature_set is None
    assert panel.form.result.text().startswith("Stopped")


def test_bad_spec_shows_one_line_and_keeps_state(qtbot, make_panel, tmp_path):
    panel = make_panel()
    panel.open_spec("wav:/nowhere")
    qtbot.waitUntil(lambda: panel.screenshot_ready(), timeout=30000)
    assert panel.message.isVisible() and "unknown data set kind 'wav'" in panel.message.text()
    assert panel.stack.currentIndex() == 0 and panel.context.dataset_spec == ""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sf.write(tmp_path / "a" / "x.wav", np.zeros(800, np.float32), 8000)
    panel.open_spec(f"folder:{tmp_path}")
    qtbot.waitUntil(lambda: panel.screenshot_ready(), timeout=30000)
    assert "class folder 'b' holds no audio files" in panel.message.text()


def test_context_change_opens_the_data_set(qtbot, make_panel, tmp_path):
    root, _ = make_folder(tmp_path / "set")
    panel = make_panel()
    panel.context.set_dataset(f"folder:{root}")
    qtbot.waitUntil(lambda: panel.overview is not None, timeout=60000)
    assert panel.bar.spec.text() == f"folder:{root}"


def test_play_disabled_with_reason_when_no_output(qtbot, make_panel, tmp_path, monkeypatch):
    import app.panels.data as data_panel

    monkeypatch.setattr(data_panel, "output_device_problem", lambda: "no audio output device")
    root, _ = make_folder(tmp_path / "set")
    panel = make_panel()
    open_and_wait(qtbot, panel, f"folder:{root}")
    assert not panel.play_button.isEnabled()
    assert panel.play_button.toolTip() == "no audio output device"
    assert "cannot play" in panel.play_note.text()


def test_play_a_clip_on_a_virtual_output(qtbot, make_panel, tmp_path, pulse_server):
    root, _ = make_folder(tmp_path / "set")
    panel = make_panel()
    open_and_wait(qtbot, panel, f"folder:{root}")
    assert panel.play_button.isEnabled(), panel.play_button.toolTip()
    panel.grid.select(2)
    panel._on_grid_example_selected(2)
    panel.play_button.click()
    assert panel.jobs.busy("play") and not panel.play_button.isEnabled()
    with qtbot.waitSignal(panel.jobs.current("play").finished, timeout=30000) as done:
        pass
    rate = 44100
    assert done.args[0] >= rate * 0.9  # a 1 s clip resampled to the device rate, all written
    qtbot.waitUntil(lambda: panel.play_button.isEnabled(), timeout=10000)


def test_mnist_shows_images(qtbot, make_panel, mnist_dir):
    panel = make_panel()
    open_and_wait(qtbot, panel, f"mnist:{mnist_dir}")
    assert panel.overview.summary.kind == "image"
    assert len(panel.grid.cells) == 40 and panel.grid.cells[0][1].image.shape == (28, 28)
    assert not panel.form.isEnabled() and not panel.play_button.isEnabled()


def test_fsdd_screenshot_path(qtbot, make_panel, fsdd_dir):
    panel = make_panel()
    panel.prepare_screenshot({"data": f"fsdd:{fsdd_dir}"})
    qtbot.waitUntil(lambda: panel.screenshot_ready(), timeout=60000)
    s = panel.overview.summary
    assert s.n_items == 3000 and s.counts.tolist() == [300] * 10
    assert "train 2700 / test 300" in panel.summary.facts.text()


def test_settings_restore_reopens_the_data_set(qtbot, tmp_path):
    root, _ = make_folder(tmp_path / "set")
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    first = DataPanel(AppContext(settings))
    qtbot.addWidget(first)
    first.open_spec(f"folder:{root}")
    qtbot.waitUntil(lambda: first.overview is not None, timeout=60000)
    first.form.n_mels.setValue(32)  # starts a job that shutdown() must stop without hanging
    first.save_state(settings)
    first.shutdown()
    second = DataPanel(AppContext(settings))
    qtbot.addWidget(second)
    second.restore_state(settings)
    qtbot.waitUntil(lambda: second.overview is not None, timeout=60000)
    assert second.form.n_mels.value() == 32 and second.overview.spec == f"folder:{root}"
    second.shutdown()
