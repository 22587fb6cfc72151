"""Live views of the Training tab: curves, layer activity, confusion matrix, progress line.

Every plot item is created once and updated with ``setData``/``setImage`` from a
:class:`engine.train.history.RunHistory`; each view redraws only the parts whose version changed.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QGridLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.plotting import color, legend_brush, make_image_plot, make_plot
from engine.train.history import RunHistory

MAX_CELL_LABELS = 40  # more classes than this: the heatmap alone, no numbers in the cells
LAYER_CURVES = 4
#: the progress bar of an empty tab: what to do first
NO_RUN = "no run yet: choose a data set on the left and press Start, or open a run in Runs"


def _pen(i: int, width: float = 2.0, dash: bool = False, alpha: int = 255):
    style = Qt.PenStyle.DashLine if dash else Qt.PenStyle.SolidLine
    return pg.mkPen((*color(i), alpha), width=width, style=style)


def clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``; ``--:--`` when unknown."""
    if not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class CurvesView(QWidget):
    """Loss per step (raw and smoothed) and per epoch; accuracy; firing rate; dead fraction."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss_plot = make_plot("Loss", "training step", "loss")
        self.acc_plot = make_plot("Accuracy", "epoch", "accuracy")
        self.rate_plot = make_plot(
            "Firing rate per layer (validation)", "epoch", "spikes/neuron/step"
        )
        self.dead_plot = make_plot("Dead neurons per layer (validation)", "epoch", "% never firing")
        # legends where the curves usually are not: accuracy rises, so bottom right
        for p, offset in (
            (self.loss_plot, (-6, 6)),
            (self.acc_plot, (-6, -6)),
            (self.rate_plot, (-6, 6)),
            (self.dead_plot, (-6, 6)),
        ):
            p.getPlotItem().addLegend(offset=offset, labelTextSize="8pt", brush=legend_brush(170))
            p.getPlotItem().getAxis("left").setWidth(52)
            p.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
        self.step_curve = self.loss_plot.plot(name="step", pen=_pen(0, 1, alpha=70))
        self.step_curve.setDownsampling(auto=True, method="peak")
        self.step_curve.setClipToView(True)
        self.smooth_curve = self.loss_plot.plot(name="step (smoothed)", pen=_pen(0, 2))
        self.train_loss_curve = self.loss_plot.plot(
            name="train (epoch)", pen=_pen(1, 2), symbol="o", symbolSize=6, symbolBrush=color(1)
        )
        self.val_loss_curve = self.loss_plot.plot(
            name="validation (epoch)",
            pen=_pen(2, 2),
            symbol="s",
            symbolSize=6,
            symbolBrush=color(2),
        )
        self.train_acc_curve = self.acc_plot.plot(
            name="train", pen=_pen(1, 2), symbol="o", symbolSize=6, symbolBrush=color(1)
        )
        self.val_acc_curve = self.acc_plot.plot(
            name="validation", pen=_pen(2, 2), symbol="s", symbolSize=6, symbolBrush=color(2)
        )
        self.acc_plot.setYRange(0, 1, padding=0.02)
        # per-layer curves come from pools made up front (a new PlotDataItem costs ~10 ms)
        self.rate_pool = [self._layer_curve(self.rate_plot, i) for i in range(LAYER_CURVES)]
        self.dead_pool = [self._layer_curve(self.dead_plot, i) for i in range(LAYER_CURVES)]
        self.rate_curves: dict[str, pg.PlotDataItem] = {}
        self.dead_curves: dict[str, pg.PlotDataItem] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.loss_plot, 0, 0)
        grid.addWidget(self.acc_plot, 0, 1)
        grid.addWidget(self.rate_plot, 1, 0)
        grid.addWidget(self.dead_plot, 1, 1)
        self._seen = {"steps": -1, "epochs": -1}

    @staticmethod
    def _layer_curve(plot, i: int) -> pg.PlotDataItem:
        curve = plot.plot(pen=_pen(i + 4), symbol="o", symbolSize=5, symbolBrush=color(i + 4))
        plot.getPlotItem().legend.removeItem(curve)  # listed once it has a layer's name
        return curve

    def reset(self) -> None:
        self._seen = {"steps": -1, "epochs": -1}
        for curves, plot in (
            (self.rate_curves, self.rate_plot),
            (self.dead_curves, self.dead_plot),
        ):
            for c in curves.values():
                c.setData([], [])
                plot.getPlotItem().legend.removeItem(c)
            curves.clear()

    def refresh(self, h: RunHistory) -> None:
        if h.version["steps"] != self._seen["steps"]:
            self._seen["steps"] = h.version["steps"]
            x = np.asarray(h.step_x, dtype=float)
            self.step_curve.setData(x, np.asarray(h.step_loss, dtype=float))
            self.smooth_curve.setData(x, h.smoothed_loss())
        if h.version["epochs"] != self._seen["epochs"]:
            self._seen["epochs"] = h.version["epochs"]
            self._draw_epochs(h)

    def _draw_epochs(self, h: RunHistory) -> None:
        epochs = h.epoch_column("epoch")
        # epoch losses sit at the step where the epoch ended (same x axis as the step loss)
        spe = h.steps_per_epoch or 1
        has_steps = bool(h.step_x)
        x_loss = epochs * spe if has_steps else epochs
        self.loss_plot.setLabel("bottom", "training step" if has_steps else "epoch")
        self.train_loss_curve.setData(x_loss, h.epoch_column("train_loss"))
        self.val_loss_curve.setData(x_loss, h.epoch_column("val_loss"))
        for plot in (self.acc_plot, self.rate_plot, self.dead_plot):
            epoch_ticks(plot, len(epochs))
        if has_steps:
            self.loss_plot.getPlotItem().getAxis("bottom").setTickSpacing()
        else:
            epoch_ticks(self.loss_plot, len(epochs))
        self.train_acc_curve.setData(epochs, h.epoch_column("train_acc"))
        self.val_acc_curve.setData(epochs, h.epoch_column("val_acc"))
        for key, curves, pool, plot in (
            ("firing_rates", self.rate_curves, self.rate_pool, self.rate_plot),
            ("dead_fractions", self.dead_curves, self.dead_pool, self.dead_plot),
        ):
            for name, values in h.layer_series(key).items():
                if name not in curves:
                    i = len(curves)
                    if i >= len(pool):
                        pool.append(self._layer_curve(plot, i))
                    curves[name] = pool[i]
                    curves[name].opts["name"] = name
                    plot.getPlotItem().legend.addItem(curves[name], name)
                scale = 100.0 if key == "dead_fractions" else 1.0  # plotted in percent
                curves[name].setData(epochs[: len(values)], values * scale)

    def plots(self) -> dict:
        return {
            "loss": self.loss_plot,
            "accuracy": self.acc_plot,
            "firing rate": self.rate_plot,
            "dead neurons": self.dead_plot,
        }


def epoch_ticks(plot, n: int) -> None:
    """Ticks on whole epochs while they fit; pyqtgraph's own spacing beyond."""
    axis = plot.getPlotItem().getAxis("bottom")
    if n <= 15:
        axis.setTickSpacing(1, 1)
    else:
        axis.setTickSpacing()


def _blue_lut() -> np.ndarray:
    t = np.linspace(0, 1, 256)[:, None]
    return (255 * (1 - t) + np.array([31, 90, 160]) * t).astype(np.ubyte)


class _CellLabels(pg.GraphicsObject):
    """The counts written in the cells of an ``n x n`` matrix drawn on ``[0, n] x [0, n]``.

    One item for all cells (a TextItem per cell costs milliseconds each to make); the text is
    drawn at a fixed pixel size whatever the zoom, like pyqtgraph's TextItem.
    """

    def __init__(self):
        super().__init__()
        self.counts: np.ndarray | None = None
        self.dark: np.ndarray | None = None

    def set_cells(self, counts: np.ndarray | None, dark: np.ndarray) -> None:
        self.prepareGeometryChange()
        self.counts = None if counts is None else np.asarray(counts, dtype=np.int64)
        self.dark = np.asarray(dark, dtype=bool)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        n = 0 if self.counts is None else self.counts.shape[0]
        return QRectF(0, 0, n, n)

    def paint(self, painter, *_args) -> None:
        if self.counts is None:
            return
        to_device = painter.transform()
        painter.save()
        painter.resetTransform()
        font = painter.font()
        font.setPixelSize(12)
        painter.setFont(font)
        n = self.counts.shape[0]
        for i in range(n):
            for j in range(n):
                v = int(self.counts[i, j])
                if not v:
                    continue
                centre = to_device.map(QPointF(j + 0.5, i + 0.5))
                painter.setPen(QColor("white" if self.dark[i, j] else "black"))
                box = QRectF(centre.x() - 40, centre.y() - 10, 80, 20)
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, str(v))
        painter.restore()


class ConfusionView(QWidget):
    """Confusion matrix heatmap (rows: true class, colour: share of the row, text: counts) and
    a per-class precision / recall / F1 table."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot, self.image = make_image_plot("Confusion matrix", "predicted", "true class")
        self.image.setLookupTable(_blue_lut())
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["precision", "recall", "F1", "examples"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.summary = QLabel()
        right = QWidget()
        lay = QVBoxLayout(right)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.summary)
        lay.addWidget(self.table, 1)
        split = QSplitter()
        split.addWidget(self.plot)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(split)
        self.labels = _CellLabels()
        self.plot.addItem(self.labels)
        self._seen = -1
        self.confusion: np.ndarray | None = None

    def reset(self) -> None:
        self._seen = -1

    def refresh(self, h: RunHistory) -> None:
        if h.version["confusion"] == self._seen:
            return
        self._seen = h.version["confusion"]
        c = h.confusion
        self.confusion = c
        if c is None:
            self.image.clear()
            self.table.setRowCount(0)
            self.summary.setText("No confusion matrix yet (one appears after each epoch).")
            return
        n = c.shape[0]
        names = [str(s) for s in h.class_names] or [str(i) for i in range(n)]
        rows = c.sum(1, keepdims=True)
        share = np.divide(c, np.maximum(rows, 1)).astype(np.float32)
        self.image.setImage(share, levels=(0, 1))
        self.image.setRect(0, 0, n, n)
        ticks = [(i + 0.5, names[i] if i < len(names) else str(i)) for i in range(n)]
        step = max(1, n // 20)
        for axis in ("bottom", "left"):
            self.plot.getPlotItem().getAxis(axis).setTicks([ticks[::step]])
        self.labels.set_cells(c if n <= MAX_CELL_LABELS else None, share > 0.55)
        self.plot.setTitle(f"Confusion matrix ({h.confusion_title})")
        total = int(c.sum())
        acc = float(np.trace(c)) / total if total else math.nan
        self.summary.setText(f"{h.confusion_title}: accuracy {acc:.1%} on {total} examples")
        p, r, f = h.prf if h.prf is not None else (np.zeros(n),) * 3
        self.table.setRowCount(n)
        self.table.setVerticalHeaderLabels(names[:n])
        for i in range(n):
            for j, v in enumerate((p[i], r[i], f[i])):
                self.table.setItem(i, j, QTableWidgetItem(f"{float(v):.3f}"))
            self.table.setItem(i, 3, QTableWidgetItem(str(int(rows[i, 0]))))

    def plots(self) -> dict:
        return {"confusion matrix": self.plot}


def progress_text(h: RunHistory) -> str:
    """One line: epoch, step, samples/s, ETA (or what the run is doing)."""
    if h.status == "preparing":
        return f"preparing: {h.preparing}"
    s = h.last_step
    if h.finished is not None:
        f = h.finished
        test = "" if math.isnan(f.test_acc) else f", test accuracy {f.test_acc:.1%}"
        best = "" if math.isnan(f.best_val_acc) else f", best validation {f.best_val_acc:.1%}"
        return f"{f.status}: {f.epochs_done}/{h.epochs_total} epochs{best}{test}"
    if s is None:
        return f"{h.status}: {len(h.epochs)}/{h.epochs_total} epochs" if h.status else NO_RUN
    return (
        f"epoch {s.epoch}/{h.epochs_total}, step {s.step}/{s.steps_per_epoch}, "
        f"loss {s.loss:.3f}, {s.samples_per_s:.0f} samples/s, ETA {clock(h.eta_s)}"
    )
