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
from engine.train_events import Traces

_VIRIDIS = pg.colormap.get("viridis").getLookupTable(nPts=256)


class _Row:
    """A raster (left) and membrane traces (right) of one layer."""

    def __init__(self, layout: pg.GraphicsLayout, title: str, n_mem: int):
        self.raster = layout.addPlot(title=f"{title}: spikes")
        self.raster.setLabel("left", "neuron")
        self.raster.getViewBox().invertY(True)
        self.raster.getViewBox().setBackgroundColor((232, 232, 232))
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(grey_lut(inverted=True))
        self.raster.addItem(self.image)
        add_export_menu(self.raster, f"{title} spikes")
        self.mem = layout.addPlot(title=f"{title}: membrane")
        self.mem.setLabel("left", "U")
        self.mem.showGrid(x=True, y=True, alpha=0.2)
        self.curves = [
            self.mem.plot(name=f"neuron{i}", pen=pg.mkPen(color(i), width=1.5))
            for i in range(n_mem)
        ]
        self.threshold = self.mem.plot(
            name="threshold", pen=pg.mkPen(color(3), width=1.5, style=Qt.PenStyle.DashLine)
        )
        add_export_menu(self.mem, f"{title} membrane")
        layout.nextRow()

    def show(self, spikes: np.ndarray, mem: np.ndarray, threshold: float, title: str) -> None:
        # raster: neurons down, time across (spikes arrive as [T, n])
        self.image.setImage(np.asarray(spikes, dtype=np.float32).T, levels=(0, 1))
        self.raster.setTitle(title)
        t = np.arange(mem.shape[0], dtype=float)
        for i, curve in enumerate(self.curves):
            if i < mem.shape[1]:
                curve.setData(t, mem[:, i])
            else:
                curve.setData([], [])
        self.threshold.setData([0.0, max(t[-1], 1.0)] if len(t) else [], [threshold] * 2)


class TracesView(QWidget):
    """Input, input spikes, per-layer rasters and membranes, output spikes."""

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
        self._key: tuple | None = None  # the layer layout the items were built for
        self.input_plot = self.input_image = self.enc_plot = self.enc_image = None
        self.rows: list[_Row] = []
        self.traces: Traces | None = None

    def clear(self) -> None:
        self.scene_widget.clear()
        self._key = None
        self.rows = []
        self.traces = None
        self.input_plot = self.enc_plot = None
        self.caption.setText("No traces for this run (an ANN, or a run made before traces).")

    def _build(self, tr: Traces) -> None:
        lay = self.scene_widget.ci
        self.scene_widget.clear()
        self.input_plot = lay.addPlot(title="Input")
        self.input_plot.setLabel("left", "feature")
        self.input_plot.setLabel("bottom", "frame")
        self.input_image = pg.ImageItem(axisOrder="row-major")
        self.input_image.setLookupTable(_VIRIDIS)
        self.input_plot.addItem(self.input_image)
        add_export_menu(self.input_plot, "input")
        self.enc_plot = lay.addPlot(title="Input spikes")
        self.enc_plot.getViewBox().invertY(True)
        self.enc_plot.getViewBox().setBackgroundColor((232, 232, 232))
        self.enc_image = pg.ImageItem(axisOrder="row-major")
        self.enc_image.setLookupTable(grey_lut(inverted=True))
        self.enc_plot.addItem(self.enc_image)
        add_export_menu(self.enc_plot, "input spikes")
        lay.nextRow()
        self.rows = [_Row(lay, L.name, L.mem.shape[1]) for L in tr.layers]
        # the network's last spiking layer usually is its output: do not draw it twice
        if _has_output_layer(tr):
            self.out_row = self.rows[-1]
        else:
            self.out_row = _Row(lay, "output", tr.output_mem.shape[1])
        self._key = self._layout_key(tr)

    @staticmethod
    def _layout_key(tr: Traces) -> tuple:
        return (
            tuple((L.name, L.mem.shape[1]) for L in tr.layers),
            tr.output_mem.shape[1],
            tr.input_spikes is None,
        )

    def show_traces(self, tr: Traces | None, class_names: list[str]) -> None:
        if tr is None:
            self.clear()
            return
        if self._key != self._layout_key(tr):
            self._build(tr)
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
        self.input_plot.setTitle(f"Input (class {name})")
        if tr.input_spikes is None:
            self.enc_image.setImage(np.zeros((1, 1), np.float32), levels=(0, 1))
            self.enc_plot.setTitle("Input spikes: none (direct current into the first layer)")
        else:
            self.enc_image.setImage(tr.input_spikes.T.astype(np.float32), levels=(0, 1))
            rate = float(tr.input_spikes.mean())
            self.enc_plot.setTitle(f"Input spikes ({rate:.1%} of slots)")
        for row, L in zip(self.rows, tr.layers):
            steps = max(L.spikes.shape[0], 1)
            rate = L.spike_count / max(L.total_neurons * steps, 1)
            row.show(
                L.spikes,
                L.mem,
                tr.threshold,
                f"{L.name}: {L.neuron_ids.size} of {L.total_neurons} neurons, "
                f"{L.spike_count} spikes ({rate:.1%})",
            )
        counts = " ".join(str(int(c)) for c in tr.output_spikes.sum(0)[:12])
        if _has_output_layer(tr):
            self.out_row.raster.setTitle(f"{tr.layers[-1].name}: spike counts per class {counts}")
        else:
            self.out_row.show(
                tr.output_spikes, tr.output_mem, tr.threshold, f"output: spike counts {counts}"
            )
        ticks = [(i, _name(class_names, i)) for i in range(tr.output_spikes.shape[1])]
        self.out_row.raster.getAxis("left").setTicks([ticks])

    def plots(self) -> dict[str, pg.GraphicsLayoutWidget]:
        """The whole scene, for export and the HTML report."""
        return {"tracked example": self.scene_widget} if self._key is not None else {}


def _has_output_layer(tr: Traces) -> bool:
    return bool(tr.layers) and tr.layers[-1].total_neurons == tr.output_spikes.shape[1]


def _name(class_names: list[str], i: int) -> str:
    return class_names[i] if 0 <= i < len(class_names) else str(i)
