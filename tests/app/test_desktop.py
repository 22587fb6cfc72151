"""Desktop conventions of the main window, with real Qt events offscreen and real files: drops,
File > Recent, Ctrl+Return / Esc, Ctrl+S, and plots that follow a dark palette."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QKeySequence, QPalette
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from app.open_paths import path_kind
from app.plotting import follow_palette, legend_brush
from app.settings import RECENT_MAX, recent_paths
from engine.train.config import RunConfig
from engine.train.run_folder import STEPS_CSV, TENSORBOARD_DIR


def _settings(path) -> QSettings:
    return QSettings(str(path), QSettings.Format.IniFormat)


def _open_window(qtbot, settings) -> MainWindow:
    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    return w


@pytest.fixture
def window(qtbot, tmp_path):
    w = _open_window(qtbot, _settings(tmp_path / "settings.ini"))
    yield w
    for panel in w.panels.values():
        if hasattr(panel, "shutdown"):
            panel.shutdown()


def _tone_folder(root):
    """A folder-per-class data set: two classes of two short tones each."""
    sr = 8000
    t = np.arange(sr // 4) / sr
    for label, freq in (("low", 300.0), ("high", 1200.0)):
        (root / label).mkdir(parents=True)
        for i in range(2):
            sf.write(
                root / label / f"{i}.wav", 0.3 * np.sin(2 * np.pi * freq * (1 + i / 20) * t), sr
            )
    return root


def _drop(widget, paths) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    action = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(
        pos.toPoint(), action, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted(), "the window refused the drag"
    drop = QDropEvent(pos, action, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)
    return drop


def test_path_kinds_pick_the_tab(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text('model = "csnn"\n')
    (run / "metrics.json").write_text("{}")
    (tmp_path / "model.pt").write_bytes(b"x")
    (tmp_path / "list.csv").write_text("path,label\n")
    sf.write(tmp_path / "clip.wav", np.zeros(800), 8000)
    (tmp_path / "notes.txt").write_text("x")
    data = tmp_path / "data"
    data.mkdir()
    assert path_kind(run) == "run"
    assert path_kind(tmp_path / "model.pt") == "checkpoint"
    assert path_kind(tmp_path / "list.csv") == "data" and path_kind(data) == "data"
    assert path_kind(tmp_path / "clip.wav") == "audio"
    assert path_kind(tmp_path / "notes.txt") is None
    assert path_kind(tmp_path / "absent") is None


def test_dropping_a_folder_opens_it_as_the_data_set(window, qtbot, tmp_path):
    folder = _tone_folder(tmp_path / "tones")
    data = window.panels["data"]
    window.show_tab("neuron")
    drop = _drop(window, [folder])
    assert drop.isAccepted()
    assert window.tabs.currentWidget() is data
    qtbot.waitUntil(lambda: data.overview is not None, timeout=60000)
    assert data.overview.spec == str(folder)
    assert sorted(data.overview.source.class_names) == ["high", "low"]
    assert window.context.dataset_spec.endswith("tones")
    assert recent_paths(window.settings, "data")[0].endswith("tones")

    # something nothing here opens is refused at the door
    (tmp_path / "notes.txt").write_text("x")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    enter = QDragEnterEvent(
        QPointF(5, 5).toPoint(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    enter.ignore()
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()


def test_ctrl_return_starts_training_and_esc_stops_it(window, qtbot, tmp_path, digits_mnist_dir):
    training = window.panels["training"]
    cfg = RunConfig(data=f"mnist:{digits_mnist_dir}", model="csnn", steps=2, epochs=20)
    training.setup.set_config(cfg.replace(batch=32, limit=300, seed=0))
    training.runs.folder.setText(str(tmp_path / "runs"))
    training.setup.tensorboard.setChecked(True)
    window.show_tab("neuron")
    with qtbot.waitSignal(training.runStarted, timeout=10000) as started:
        qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is training
    assert str(tmp_path / "runs") in started.args[0]
    qtbot.waitUntil(lambda: training.history.last_step is not None, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not training.is_running(), timeout=60000)
    assert training.history.finished is not None
    assert training.history.finished.status == "stopped"
    assert recent_paths(window.settings, "run")[0] == started.args[0]
    run = Path(started.args[0])
    assert list((run / TENSORBOARD_DIR).glob("events.out.tfevents.*"))  # the tab's check box
    assert (run / STEPS_CSV).read_text().count("\n") >= 2  # header and the steps done


def test_recent_lists_update_and_persist(qtbot, tmp_path):
    settings = _settings(tmp_path / "settings.ini")
    w = _open_window(qtbot, settings)
    menu = w.recent_menu
    menu.aboutToShow.emit()
    assert [a.text() for a in menu.actions()] == ["(nothing opened yet)"]
    specs = [f"fsdd:/data/set{i}" for i in range(RECENT_MAX + 2)]
    for spec in specs:
        w.context.set_dataset(spec)
    w.context.set_checkpoint(str(tmp_path / "best.pt"))
    w.context.set_dataset(specs[3])  # opened again: moves to the top, listed once
    expected = [specs[3]] + [s for s in reversed(specs) if s != specs[3]][: RECENT_MAX - 1]
    assert recent_paths(settings, "data") == expected
    menu.aboutToShow.emit()
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert texts[:RECENT_MAX] == expected and str(tmp_path / "best.pt") in texts
    w.close()

    again = _open_window(qtbot, _settings(tmp_path / "settings.ini"))  # a new session
    assert recent_paths(again.settings, "data") == expected
    again.recent_menu.aboutToShow.emit()
    action = next(a for a in again.recent_menu.actions() if a.text() == specs[3])
    action.trigger()
    assert again.panels["data"].bar.spec.text() == specs[3]
    assert again.tabs.currentWidget() is again.panels["data"]
    for panel in again.panels.values():
        panel.shutdown() if hasattr(panel, "shutdown") else None


def test_ctrl_s_exports_the_current_plot(window, tmp_path):
    exported = [a for a in window.findChildren(type(window.start_action)) if "plot" in a.text()]
    assert exported[0].shortcut() == QKeySequence("Ctrl+S")
    window.show_tab("neuron")
    out = window.export_current_plot(str(tmp_path / "plot.png"))
    assert out and (tmp_path / "plot.png").stat().st_size > 1000
    assert window.export_current_plot(str(tmp_path / "plot.csv"))
    assert (tmp_path / "plot.csv").read_text().count("\n") > 10


@pytest.fixture
def dark_palette(qapp):
    saved = QPalette(qapp.palette())
    dark = QPalette(saved)
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        dark.setColor(group, QPalette.ColorRole.Window, QColor(40, 40, 40))
        dark.setColor(group, QPalette.ColorRole.Base, QColor(25, 25, 25))
        dark.setColor(group, QPalette.ColorRole.Text, QColor(230, 230, 230))
        dark.setColor(group, QPalette.ColorRole.WindowText, QColor(230, 230, 230))
    qapp.setPalette(dark)
    yield
    qapp.setPalette(saved)
    follow_palette(saved)  # pyqtgraph's defaults are global: give the next tests their light plots


def test_plots_follow_a_dark_palette(qtbot, tmp_path, dark_palette):
    w = _open_window(qtbot, _settings(tmp_path / "settings.ini"))
    plot = w.panels["training"].curves.plots()
    widget = next(iter(plot.values()))
    background = widget.backgroundBrush().color()
    assert background.lightness() < 60
    axis = widget.getPlotItem().getAxis("bottom")
    assert axis.pen().color().lightness() > 180  # light axes on the dark background
    assert QColor(*legend_brush()).lightness() < 60  # legends see-through dark, not white
    w.show_tab("neuron")
    w.export_current_plot(str(tmp_path / "dark.png"))
    from PySide6.QtGui import QImage

    image = QImage(str(tmp_path / "dark.png"))
    corner = QColor(image.pixel(3, 3))
    assert corner.lightness() < 60  # the exported picture is dark too
