"""The Encoding tab with real widgets and real files: images, MNIST, audio, data-set clips."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QImage

from app.context import AppContext
from app.panels.encoding import EncodingPanel
from engine.data.samples import digits_sample, upscale


@pytest.fixture
def make_panel(qtbot, tmp_path):
    made = []

    def make(settings=None):
        settings = settings or QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
        p = EncodingPanel(AppContext(settings))
        qtbot.addWidget(p)
        p.resize(1200, 800)
        p.show()
        made.append(p)
        return p

    yield make
    for p in made:  # as the main window does on close: stop and join the loader threads
        p.shutdown()


@pytest.fixture
def panel(make_panel):
    p = make_panel()
    c = p.controls
    c.source.setCurrentIndex(c.source.findData("digits"))  # no ../shared needed
    return p


def _select(box, key):
    box.setCurrentIndex(box.findData(key))


def test_builtin_digits_rate_code(panel):
    c = panel.controls
    assert panel.view is not None and panel.loaded.count == 1797
    assert c.item_label.text() == "label 0"
    images, _ = digits_sample(size=8)
    np.testing.assert_allclose(panel.view.input, upscale(images[0], 28), atol=1e-6)
    c.steps.setValue(200)
    v = panel.view
    assert v.spikes.shape == (200, 28, 28)
    # the average over many steps approaches the image (the report's Fig. 6)
    assert np.abs(v.summary - v.input).max() < 0.2
    np.testing.assert_array_equal(panel.views.summary_image.image, v.summary)
    assert f"<b>{int(v.spikes.sum())}</b> spikes" in c.numbers.text()
    sparsity = 100 * (1 - v.spikes.mean())
    assert f"{sparsity:.1f} %" in c.numbers.text()


def test_gain_and_seed_change_the_spikes(panel):
    c = panel.controls
    before = panel.view.spikes.sum()
    c.gain.setValue(0.3)
    assert panel.view.spikes.sum() < 0.5 * before
    a = panel.view.spikes.copy()
    c.seed.setValue(7)
    assert not np.array_equal(a, panel.view.spikes)


def test_latency_brighter_pixels_spike_first(panel):
    c = panel.controls
    _select(c.encoder, "latency")
    c.linear.setChecked(True)
    v = panel.view
    assert np.all(v.spikes.sum(axis=0) == 1)
    first = v.spikes.argmax(axis=0)
    bright, dark = v.input > 0.8, v.input < 0.2
    assert first[bright].max() < first[dark].min()
    assert "darker = earlier" in panel.views.summary_plot.getPlotItem().titleLabel.text


def test_delta_spikes_only_at_changes_and_animation_reveals_columns(panel, qtbot):
    c = panel.controls
    _select(c.encoder, "delta")
    c.delta_threshold.setValue(0.2)
    v = panel.view
    x = v.input
    change = np.diff(x, axis=1, prepend=0.0)
    np.testing.assert_array_equal(v.raster != 0, np.abs(change) >= 0.2)
    assert not c.steps.isEnabled()
    views = panel.views
    views.step.setValue(10)
    shown = views.frame_image.image
    np.testing.assert_array_equal(shown[:, 11:], 0)
    np.testing.assert_array_equal(shown[:, :11], v.raster[:, :11])


def test_play_button_animates_steps(panel, qtbot):
    views = panel.views
    views.step.setValue(0)
    views.play.click()
    assert views.play.text() == "Pause"
    qtbot.waitUntil(lambda: views.step.value() >= 3, timeout=5000)
    t = views.step.value()
    np.testing.assert_array_equal(views.frame_image.image, panel.view.spikes[t])
    views.play.click()
    assert not views.timer.isActive()


def test_item_index_changes_the_digit(panel):
    panel.controls.index.setValue(5)
    assert panel.controls.item_label.text() == "label 5"


def test_image_file(make_panel, tmp_path):
    img = QImage(40, 20, QImage.Format.Format_RGB32)
    img.fill(QColor("black"))
    for x in range(20, 40):
        for y in range(20):
            img.setPixelColor(x, y, QColor("white"))
    path = str(tmp_path / "half.png")
    assert img.save(path)
    p = make_panel()
    p.open_path("image", path)
    v = p.view
    assert v.input.shape == (20, 40)
    assert v.input[:, :20].max() == 0 and v.input[:, 20:].min() == 1
    assert v.spikes[:, :, :20].sum() == 0 and v.spikes[:, :, 20:].all()


def test_bad_file_shows_one_line(make_panel, tmp_path):
    bad = tmp_path / "not-images-idx3-ubyte"
    bad.write_bytes(b"hello world")
    p = make_panel()
    p.open_path("mnist", str(bad))
    assert p.message.isVisible()
    assert str(bad) in p.message.text() and "\n" not in p.message.text()


def test_mnist_idx(make_panel, mnist_dir):
    p = make_panel()
    p.open_path("mnist", str(mnist_dir / "t10k-images-idx3-ubyte.gz"))
    assert p.loaded.count == 10000
    assert p.controls.item_label.text() == "label 7"
    assert p.view.input.shape == (28, 28)


def test_audio_file_waveform_mfcc_and_spikes(make_panel, qtbot, fsdd_dir):
    p = make_panel()
    p.open_path("audio", str(fsdd_dir / "3_jackson_12.wav"))
    qtbot.waitUntil(lambda: p.loaded is not None and p.loaded.audio, timeout=30000)
    qtbot.waitUntil(lambda: not p.jobs.busy(), timeout=10000)
    assert p.views.wave_plot.isVisible()
    t, y = p.views.wave_curve.getData()
    assert y.size == 8000 and t[-1] == pytest.approx(7999 / 8000)
    assert p.loaded.matrix.shape == (20, 63)
    v = p.view
    assert v.spikes.shape == (50, 20, 63) and v.spikes.sum() > 0
    # the digit is spoken in the middle: delta spikes fall where the MFCC changes
    _select(p.controls.encoder, "delta")
    cols = np.flatnonzero(np.any(p.view.raster[:, 1:] != 0, axis=0)) + 1
    assert cols.size > 0 and 10 < cols.min() and cols.max() < 55


def test_clip_of_the_current_data_set(make_panel, qtbot, fsdd_dir):
    p = make_panel()
    _select(p.controls.source, "dataset")
    assert "No data set" in p.message.text()
    p.context.set_dataset(f"fsdd:{fsdd_dir}")
    qtbot.waitUntil(lambda: p.loaded is not None and p.loaded.audio, timeout=60000)
    assert p.loaded.count == 3000
    assert p.controls.item_label.text().startswith("class ")
    p.controls.index.setValue(7)
    qtbot.waitUntil(lambda: "#7" in p.loaded.title, timeout=30000)
    assert p.loaded.matrix.shape == (20, 63)


def test_state_round_trip(make_panel, tmp_path):
    settings = QSettings(str(tmp_path / "state.ini"), QSettings.Format.IniFormat)
    a = make_panel(settings)
    _select(a.controls.source, "digits")
    _select(a.controls.encoder, "latency")
    a.controls.steps.setValue(33)
    a.controls.index.setValue(12)
    a.controls.tau.setValue(9.5)
    a.save_state(settings)
    b = make_panel(settings)
    b.restore_state(settings)
    assert b.controls.source_kind() == "digits"
    assert b.controls.encoder_name() == "latency"
    assert b.controls.steps.value() == 33 and b.controls.index.value() == 12
    assert b.controls.tau.value() == pytest.approx(9.5)
    np.testing.assert_array_equal(b.view.spikes, a.view.spikes)
