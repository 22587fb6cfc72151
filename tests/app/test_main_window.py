"""The main window, its settings, the command line and plot export, with real Qt and files."""

from __future__ import annotations

import csv
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QSettings
from PySide6.QtGui import QImage, QPainter

from app.cli import main
from app.main_window import MainWindow
from app.plotting import export_plot
from engine import __version__


def _settings(path) -> QSettings:
    return QSettings(str(path), QSettings.Format.IniFormat)


def _pixels(path) -> np.ndarray:
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_Grayscale8)
    assert not image.isNull(), f"{path} is not an image Qt can read"
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    raw = np.frombuffer(image.constBits(), dtype=np.uint8, count=h * stride)
    return raw.reshape(h, stride)[:, :w].astype(float)


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(settings=_settings(tmp_path / "settings.ini"))
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    for panel in w.panels.values():
        if hasattr(panel, "shutdown"):
            panel.shutdown()


def test_window_has_the_neuron_and_encoding_tabs(window):
    assert list(window.panels)[:2] == ["neuron", "encoding"]
    assert window.tabs.tabText(0) == "Neuron" and window.tabs.tabText(1) == "Encoding"
    window.show_tab("encoding")
    assert window.tabs.currentWidget() is window.panels["encoding"]
    with pytest.raises(KeyError):
        window.show_tab("nope")


def test_settings_persist_across_two_windows(qtbot, tmp_path):
    path = tmp_path / "persist.ini"
    first = MainWindow(settings=_settings(path))
    qtbot.addWidget(first)
    first.resize(720, 520)  # inside the offscreen screen (800x600) so nothing clamps it
    first.show()
    neuron, encoding = first.panels["neuron"], first.panels["encoding"]
    neuron.controls.beta.setValue(0.7)
    neuron.controls.reset.setCurrentIndex(neuron.controls.reset.findData("zero"))
    encoding.controls.source.setCurrentIndex(encoding.controls.source.findData("digits"))
    encoding.controls.encoder.setCurrentIndex(encoding.controls.encoder.findData("delta"))
    encoding.controls.index.setValue(3)
    first.show_tab("encoding")
    size = (first.width(), first.height())
    first.close()  # closeEvent saves

    second = MainWindow(settings=_settings(path))
    qtbot.addWidget(second)
    n2, e2 = second.panels["neuron"], second.panels["encoding"]
    assert n2.controls.beta.value() == pytest.approx(0.7)
    assert n2.controls.reset.currentData() == "zero"
    assert n2.result.beta == pytest.approx(0.7)  # the restored settings were simulated
    assert e2.controls.source_kind() == "digits" and e2.controls.encoder_name() == "delta"
    assert e2.controls.index.value() == 3 and e2.controls.item_label.text() == "label 3"
    assert second.tabs.currentWidget() is e2
    # window geometry too (Qt clamps the width to the offscreen screen, 800 px wide)
    screen_width = second.screen().availableGeometry().width()
    assert second.height() == size[1]
    assert second.width() >= min(size[0], screen_width) - 4
    second.close()


def test_export_png_svg_csv_of_the_membrane_plot(window, tmp_path):
    panel = window.panels["neuron"]
    plot = panel.single.mem_plot
    png, svg, csv_path = tmp_path / "m.png", tmp_path / "m.svg", tmp_path / "m.csv"
    export_plot(plot, str(png), width=800)
    export_plot(plot, str(svg))
    export_plot(plot, str(csv_path))

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = _pixels(png)
    assert pixels.shape[1] == 800 and pixels.std() > 5, "the PNG is blank"

    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert any(el.tag.endswith("path") or el.tag.endswith("polyline") for el in root.iter())

    with open(csv_path, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header == ["membrane_x", "membrane_y", "threshold_x", "threshold_y"]
    mem = np.array([float(r[1]) for r in body])
    np.testing.assert_allclose(mem, panel.result.membrane, rtol=1e-8, atol=1e-12)
    assert [float(v) for v in (body[0][3], body[1][3])] == [1.0, 1.0]
    assert float(body[1][2]) == 199.0


def test_export_image_plot_csv_is_the_matrix(window, tmp_path):
    window.show_tab("encoding")
    panel = window.panels["encoding"]
    panel.controls.source.setCurrentIndex(panel.controls.source.findData("digits"))
    path = tmp_path / "avg.csv"
    export_plot(panel.views.summary_plot, str(path))
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_allclose(data.T, panel.view.summary, atol=1e-8)  # one column per row
    png = tmp_path / "avg.png"
    export_plot(panel.views.summary_plot, str(png), width=400)
    assert _pixels(png).std() > 5
    with pytest.raises(ValueError, match="unknown export format"):
        export_plot(panel.views.summary_plot, str(tmp_path / "x.bmp"))


def test_qt_binding_keeps_none_alive():
    # PySide6 6.12.0 dropped a reference to None on every void call (QPainter.drawLine...),
    # which aborts Python < 3.12 after a few thousand paints; pyproject excludes that version
    image = QImage(50, 50, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    before = sys.getrefcount(None)
    for _ in range(5000):
        painter.drawLine(QPointF(0, 0), QPointF(10, 10))
    after = sys.getrefcount(None)
    painter.end()
    assert after > before - 500


# ----- command line ------------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"snn-explorer {__version__}"


def test_no_display_is_one_line_not_a_qt_abort():
    """``snn-explorer`` on a Linux machine with no display: one line saying what to do."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    done = subprocess.run(
        [sys.executable, "-m", "app"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snn-explorer: no display"), done.stderr
    assert "xvfb-run" in lines[0] and "screenshot" in lines[0]


def test_unknown_option_and_tab_are_one_line_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["--bogus"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--bogus" in err
    code = main(["screenshot", "--tab", "nope", "--out", str(tmp_path / "x.png")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown tab 'nope'" in err and "neuron" in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("tab", ["neuron", "encoding"])
def test_screenshot_command_writes_a_non_blank_png(tab, tmp_path):
    out = tmp_path / f"{tab}.png"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "screenshot",
            "--tab",
            tab,
            "--out",
            str(out),
            "--size",
            "1000x700",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = _pixels(out)
    # 1000 px wide unless the tabs' minimum width is larger
    assert pixels.shape[0] == 700 and pixels.shape[1] >= 1000
    assert pixels.std() > 20, "the screenshot is (nearly) one colour"
    # the plots carry content: many distinct grey levels, not just a blank frame and widgets
    assert np.unique(pixels.astype(np.uint8)).size > 60


def test_settle_heap_freezes_the_start_up_objects():
    """run_gui calls settle_heap once the window is up: the garbage collector then no longer
    scans the start-up objects (a full scan of them stalled the UI for ~200 ms)."""
    import subprocess
    import sys

    code = (
        "import gc; import torch, pyqtgraph; from app.main_window import settle_heap; "
        "before = gc.get_freeze_count(); settle_heap(); print(before, gc.get_freeze_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    assert before == 0 and after > 10_000


def test_screenshot_view_shows_a_sub_tab_and_refuses_an_unknown_one(tmp_path):
    def shot(view, name):
        out = tmp_path / name
        argv = [sys.executable, "-m", "app", "screenshot", "--tab", "neuron", "--out", str(out)]
        done = subprocess.run(
            [*argv, "--size", "1000x700", "--view", view],
            capture_output=True,
            text=True,
            timeout=300,
        )
        return done, out

    done, out = shot("no such view", "bad.png")
    assert done.returncode == 2 and "no view 'no such view'" in done.stderr
    assert not out.exists()
    first, a = shot("Single neuron", "a.png")
    other, b = shot("Surrogate gradients", "b.png")
    assert first.returncode == 0 and other.returncode == 0, first.stderr + other.stderr
    assert not np.array_equal(_pixels(a), _pixels(b)), "--view changed nothing"
