"""The tracked validation example through the network (the report's Figs. 25, 26 and 30).

One pyqtgraph scene: the input and its spike encoding, then for each spiking layer its spike
raster and a few membrane traces with the threshold line. The plot items are built when a run's
first traces arrive (the layer list is known only then) and updated in place afterwards.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.plotting import add_export_menu, color, grey_lut
from engine.train.events import Traces

_VIRIDIS = pg.colormap.get("viridis").getLookupTable(nPts=256)


PREBUILT_ROWS = 3  # layer rows made up front (a CSNN has three spiking layers)


def _raster_plot(title: str) -> tuple[pg.PlotItem, pg.ImageItem]:
    plot = pg.PlotItem(title=title)
    plot.getViewBox().invertY(True)
    plot.getViewBox().setBackgroundColor((232, 232, 232))
    image = pg.ImageItem(axisOrder="row-major")
    image.setLookupTable(grey_lut(inverted=True))
    plot.addItem(image)
    add_export_menu(plot, title)
    return plot, image


class _Row:
    """A raster (left) and membrane traces (right) of one layer; reused from run to run."""

    def __init__(self, index: int):
        self.raster, self.image = _raster_plot(f"layer {index + 1} spikes")
        self.raster.setLabel("left", "neuron")
        self.mem = pg.PlotItem(title=f"layer {index + 1} membrane")
        self.mem.setLabel("left", "U")
        self.mem.showGrid(x=True, y=True, alpha=0.2)
        self.curves: list[pg.PlotDataItem] = []
        self.threshold = self.mem.plot(
            name="threshold", pen=pg.mkPen(color(3), width=1.5, style=Qt.PenStyle.DashLine)
        )
        add_export_menu(self.mem, f"layer {index + 1} membrane")

    def show(self, name: str, spikes, mem, mem_ids, threshold: float, title: str) -> None:
        # raster: neurons down, time across (spikes arrive as [T, n])
        self.image.setImage(np.asarray(spikes, dtype=np.float32).T, levels=(0, 1))
        self.raster.setTitle(title)
        self.raster.getAxis("left").setTicks(None)
        self.mem.setTitle(f"{name}: membrane, {mem.shape[1]} neurons")
        while len(self.curves) < mem.shape[1]:
            i = len(self.curves)
            self.curves.append(self.mem.plot(pen=pg.mkPen(color(i), width=1.5)))
        t = np.arange(mem.shape[0], dtype=float)
        for i, curve in enumerate(self.curves):
            if i < mem.shape[1]:
                curve.setData(t, mem[:, i])
                curve.opts["name"] = f"neuron {int(mem_ids[i])}"  # the CSV column name
            else:
                curve.setData([], [])
        self.threshold.setData([0.0, max(t[-1], 1.0)] if len(t) else [], [threshold] * 2)


class TracesView(QWidget):
    """Input, input spikes, per-layer rasters and membranes, output spikes.

    The plots are made once, up front (making a pyqtgraph plot costs tens of milliseconds,
    which would stall the window when a run's first traces arrive), and reused for every run;
    a model with more layers than ``PREBUILT_ROWS`` adds rows once.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.scene_widget = pg.GraphicsLayoutWidget()
        self.caption = QLabel(
            "The tracked validation example appears here once a spiking run starts."
        )
        self.caption.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.caption)
        lay.addWidget(self.scene_widget, 1)
        self.input_plot = pg.PlotItem(title="Input")
        self.input_plot.setLabel("left", "feature")
        self.input_plot.setLabel("bottom", "frame")
        self.input_image = pg.ImageItem(axisOrder="row-major")
        self.input_image.setLookupTable(_VIRIDIS)
        self.input_plot.addItem(self.input_image)
        add_export_menu(self.input_plot, "input")
        self.enc_plot, self.enc_image = _raster_plot("input spikes")
        self.pool = [_Row(i) for i in range(PREBUILT_ROWS)]
        self.rows: list[_Row] = []  # the rows in use
        self.out_row: _Row | None = None
        self._shown: tuple | None = None  # (layer rows, input spikes shown) laid out now
        self.traces: Traces | None = None

    def clear(self) -> None:
        self.scene_widget.ci.clear()
        self._shown = None
        self.rows = []
        self.traces = None
        self.caption.setText("No traces for this run (an ANN, or a run made before traces).")

    def _arrange(self, n: int, encoded: bool) -> None:
        """Lay out the input row (with the input spikes when ``encoded``) and ``n`` layer rows."""
        while len(self.pool) < n:
            self.pool.append(_Row(len(self.pool)))
        self.rows = self.pool[:n]
        if (n, encoded) == self._shown:
            return
        ci = self.scene_widget.ci
        ci.clear()
        if encoded:
            ci.addItem(self.input_plot, 0, 0)
            ci.addItem(self.enc_plot, 0, 1)
        else:  # the direct current feeds the input itself: no input spikes to show
            ci.addItem(self.input_plot, 0, 0, 1, 2)
        for i, row in enumerate(self.rows):
            ci.addItem(row.raster, i + 1, 0)
            ci.addItem(row.mem, i + 1, 1)
            last = i == n - 1
            row.raster.setLabel("bottom", "time step" if last else None)
            row.mem.setLabel("bottom", "time step" if last else None)
        self._shown = (n, encoded)

    def show_traces(self, tr: Traces | None, class_names: list[str]) -> None:
        if tr is None:
            self.clear()
            return
        # the network's last spiking layer usually is its output: do not draw it twice
        own_output = _has_output_layer(tr)
        self._arrange(len(tr.layers) + (0 if own_output else 1), tr.input_spikes is not None)
        self.out_row = self.rows[-1]
        self.traces = tr
        name = _name(class_names, tr.label)
        guess = _name(class_names, tr.predicted)
        when = "before training" if tr.epoch == 0 else f"after epoch {tr.epoch}"
        self.caption.setText(
            f"Validation example #{tr.example_index} (class {name}), {when}: predicted {guess}"
            f"{' (right)' if tr.label == tr.predicted else ' (wrong)'}. Spikes are black."
        )
        # features: low coefficients at the bottom, like a spectrogram
        self.input_image.setImage(np.asarray(tr.input, dtype=np.float32)[::-1], autoLevels=True)
        direct = " (fed as a current at every step)" if tr.input_spikes is None else ""
        self.input_plot.setTitle(f"Input, class {name}{direct}")
        if tr.input_spikes is not None:
            self.enc_image.setImage(tr.input_spikes.T.astype(np.float32), levels=(0, 1))
            rate = float(tr.input_spikes.mean())
            self.enc_plot.setTitle(f"Input spikes ({rate:.0%} of slots)")
        for row, L in zip(self.rows, tr.layers):
            steps = max(L.spikes.shape[0], 1)
            rate = L.spike_count / max(L.total_neurons * steps, 1)
            shown = "" if L.neuron_ids.size == L.total_neurons else f"{L.neuron_ids.size} of "
            row.show(
                L.name,
                L.spikes,
                L.mem,
                L.mem_ids,
                tr.threshold,
                f"{L.name}: {shown}{L.total_neurons} neurons, {rate:.0%} spiking",
            )
        counts = " ".join(str(int(c)) for c in tr.output_spikes.sum(0)[:12])
        if own_output:
            self.out_row.raster.setTitle(f"{tr.layers[-1].name}: spike counts {counts}")
        else:
            n = tr.output_mem.shape[1]
            self.out_row.show(
                "output",
                tr.output_spikes,
                tr.output_mem,
                np.arange(n),
                tr.threshold,
                f"output: spike counts {counts}",
            )
        ticks = [(i, _name(class_names, i)) for i in range(tr.output_spikes.shape[1])]
        self.out_row.raster.getAxis("left").setTicks([ticks])

    def plots(self) -> dict[str, pg.GraphicsLayoutWidget]:
        """The whole scene, for export and the HTML report."""
        return {"tracked example": self.scene_widget} if self.traces is not None else {}


def _has_output_layer(tr: Traces) -> bool:
    return bool(tr.layers) and tr.layers[-1].total_neurons == tr.output_spikes.shape[1]


def _name(class_names: list[str], i: int) -> str:
    return class_names[i] if 0 <= i < len(class_names) else str(i)
