"""Plot helpers shared by panels: consistent styling and export of every plot to PNG, SVG, CSV.

Every plot made with ``make_plot`` has "Save plot as PNG/SVG..." and "Save data as CSV..." in its
context menu. ``export_plot`` is the same thing without a dialog (tests, scripts, batch export).
"""

from __future__ import annotations

import csv
import os

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401 - registers the exporters
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFileDialog

from engine.atomic import atomic_path

pg.setConfigOptions(antialias=True, background="w", foreground="k", imageAxisOrder="row-major")

PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def color(i: int):
    return PALETTE[i % len(PALETTE)]


def follow_palette(palette: QPalette) -> None:
    """Draw the plots made from now on in ``palette``'s colours (the system's, light or dark):
    its Base colour behind the data, its Text colour for axes, labels and titles. The main window
    calls this with the application's palette before it builds the tabs."""
    pg.setConfigOptions(
        background=palette.color(QPalette.ColorRole.Base),
        foreground=palette.color(QPalette.ColorRole.Text),
    )


def legend_brush(alpha: int = 170) -> tuple[int, int, int, int]:
    """A see-through fill of the plot background's colour (light or dark) behind a legend."""
    c = pg.mkColor(pg.getConfigOption("background"))
    return (c.red(), c.green(), c.blue(), alpha)


def make_plot(
    title: str = "", x_label: str = "", y_label: str = "", parent=None, view_box=None
) -> pg.PlotWidget:
    """A PlotWidget with labels, a grid and export actions in its context menu.

    ``view_box`` replaces the default ViewBox (e.g. one that lets the user draw on the plot).
    """
    w = pg.PlotWidget(parent=parent, viewBox=view_box)
    item = w.getPlotItem()
    if title:
        item.setTitle(title)
    if x_label:
        item.setLabel("bottom", x_label)
    if y_label:
        item.setLabel("left", y_label)
    item.showGrid(x=True, y=True, alpha=0.2)
    add_export_menu(item, title or "plot")
    return w


def make_image_plot(
    title: str = "", x_label: str = "", y_label: str = "", parent=None, lock_aspect: bool = True
) -> tuple[pg.PlotWidget, pg.ImageItem]:
    """A plot holding one ImageItem (row 0 at the top, like a picture), exportable like any plot.

    The image's CSV export writes its matrix, one row per line.
    """
    w = make_plot(title, x_label, y_label, parent)
    item = w.getPlotItem()
    item.showGrid(x=False, y=False)
    item.getViewBox().invertY(True)
    # a light grey surround shows where a mostly white image ends
    item.getViewBox().setBackgroundColor((232, 232, 232))
    if lock_aspect:
        item.getViewBox().setAspectLocked(True)
    image = pg.ImageItem(axisOrder="row-major")
    item.addItem(image)
    return w, image


def add_export_menu(plot_item: pg.PlotItem, name: str = "plot") -> None:
    """Add "Save plot as PNG/SVG" and "Save data as CSV" to a PlotItem's context menu."""
    menu = plot_item.getViewBox().menu
    menu.addSeparator()
    for label, suffix in (
        ("Save plot as PNG...", "png"),
        ("Save plot as SVG...", "svg"),
        ("Save data as CSV...", "csv"),
    ):
        action = menu.addAction(label)
        action.triggered.connect(lambda _=False, s=suffix: _ask_and_export(plot_item, name, s))


def _ask_and_export(plot_item, name: str, suffix: str) -> None:
    filters = {"png": "PNG image (*.png)", "svg": "SVG image (*.svg)", "csv": "CSV data (*.csv)"}
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_") or "plot"
    path, _ = QFileDialog.getSaveFileName(None, "Export", f"{safe}.{suffix}", filters[suffix])
    if path:
        export_plot(plot_item, path)


def _plot_item(target):
    if isinstance(target, pg.PlotWidget):
        return target.getPlotItem()
    return target


def export_plot(target, path: str, width: int = 1200) -> str:
    """Write a plot to ``path``; the suffix picks the format (``.png``, ``.svg`` or ``.csv``).

    ``target`` is a PlotWidget, a PlotItem, or a GraphicsLayoutWidget (PNG/SVG of the whole scene).
    CSV holds every curve's x and y columns, or an image's matrix.
    """
    suffix = os.path.splitext(path)[1].lower()
    if isinstance(target, pg.GraphicsLayoutWidget):
        item = target.scene()
    else:
        item = _plot_item(target)
    if suffix == ".png":
        exp = pg.exporters.ImageExporter(item)
        exp.parameters()["width"] = width
        image = exp.export(toBytes=True)
        with atomic_path(path) as tmp:
            if not image.save(str(tmp), "PNG"):
                raise OSError(f"{path}: cannot write the PNG")
    elif suffix == ".svg":
        write_plot_svg(item, path)
    elif suffix == ".csv":
        write_plot_csv(item, path)
    else:
        raise ValueError(f"{path}: unknown export format {suffix!r} (use .png, .svg or .csv)")
    return path


def write_plot_svg(item, path: str) -> str:
    """Render a PlotItem (or a whole scene) as vector SVG with Qt's own SVG generator.

    pyqtgraph's SVGExporter rewrites the generator's path data and fails on the closed paths
    ("... Z") that current Qt writes, so the scene is rendered directly instead.
    """
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    if isinstance(item, pg.QtWidgets.QGraphicsScene):
        scene, source = item, item.itemsBoundingRect()
    else:
        scene, source = item.scene(), item.sceneBoundingRect()
    if scene is None or source.isEmpty():
        raise ValueError(f"{path}: the plot has no size yet (show it before exporting)")
    target = QRectF(0, 0, source.width(), source.height())
    with atomic_path(path) as tmp:
        gen = QSvgGenerator()
        gen.setFileName(str(tmp))
        gen.setSize(target.size().toSize())
        gen.setViewBox(target)
        gen.setTitle(os.path.splitext(os.path.basename(path))[0])
        painter = QPainter(gen)
        try:
            scene.render(painter, target, source)
        finally:
            painter.end()
    return path


def plot_data(plot_item) -> tuple[list[str], list[np.ndarray]]:
    """Names and columns of every curve and image in a PlotItem (or every PlotItem in a scene)."""
    items = (
        [plot_item]
        if isinstance(plot_item, pg.PlotItem)
        else [i for i in plot_item.items() if isinstance(i, pg.PlotItem)]
    )
    names, cols = [], []
    for p_index, pitem in enumerate(items):
        prefix = f"p{p_index}_" if len(items) > 1 else ""
        for c_index, curve in enumerate(pitem.listDataItems()):
            x, y = curve.getData()
            if x is None or y is None or len(y) == 0:  # an empty curve adds no columns
                continue
            label = curve.name() or f"curve{c_index}"
            names += [f"{prefix}{label}_x", f"{prefix}{label}_y"]
            cols += [np.asarray(x, dtype=float), np.asarray(y, dtype=float)]
        for im_index, img in enumerate(i for i in pitem.items if isinstance(i, pg.ImageItem)):
            if img.image is None:
                continue
            arr = np.atleast_2d(np.asarray(img.image, dtype=float))
            if arr.ndim > 2:
                arr = arr.reshape(arr.shape[0], -1)
            for r, row in enumerate(arr):
                names.append(f"{prefix}image{im_index}_row{r}")
                cols.append(row)
    return names, cols


def write_plot_csv(plot_item, path: str) -> str:
    names, cols = plot_data(plot_item)
    n = max((len(c) for c in cols), default=0)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for i in range(n):
            writer.writerow(["" if i >= len(c) else f"{c[i]:.9g}" for c in cols])
    return path


def grey_lut(inverted: bool = False) -> np.ndarray:
    """A 256-entry grey lookup table (black to white, or white to black when ``inverted``)."""
    ramp = np.linspace(0, 255, 256).astype(np.ubyte)
    if inverted:
        ramp = ramp[::-1].copy()
    return np.stack([ramp, ramp, ramp], axis=1)


def spike_lut() -> np.ndarray:
    """Lookup table for spike images shown with ``levels=(-1, 1)``: off-spike red, none white,
    spike black."""
    lut = np.full((3, 3), 255, dtype=np.ubyte)
    lut[0] = (214, 39, 40)
    lut[2] = (0, 0, 0)
    return lut
