"""Views of a sweep: the trials table, accuracy against each parameter, parallel coordinates,
parameter importances. Each view takes plain rows (:class:`engine.train.sweep_study.TrialRow`)
and the space (:class:`engine.train.sweep_space.SpaceParam`) and redraws from them."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from app.plotting import add_export_menu
from engine.train.sweep_space import SpaceParam

DONE_COLOUR = (31, 119, 180)
PRUNED_COLOUR = (255, 127, 14)
OTHER_COLOUR = (150, 150, 150)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _pct(v) -> str:
    return "" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def position(p: SpaceParam, value) -> float:
    """Where ``value`` lies on ``p``'s axis, in [0, 1] (log ranges on a log axis)."""
    if p.choices:
        try:
            i = list(p.choices).index(value)
        except ValueError:
            return math.nan
        return i / max(1, len(p.choices) - 1) if len(p.choices) > 1 else 0.5
    lo, hi, v = float(p.low), float(p.high), float(value)
    if p.log:
        lo, hi, v = math.log(lo), math.log(hi), math.log(v)
    return (v - lo) / (hi - lo) if hi > lo else 0.5


class TrialTable(QTableWidget):
    """One row per trial: number, state, parameters, best val acc, seconds.

    Signals
    -------
    runActivated(str)
        A trial was double-clicked: its run folder.
    """

    runActivated = Signal(str)

    def __init__(self, parent=None):
        super().__init__(0, 0, parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.cellDoubleClicked.connect(self._on_view_double_clicked)
        self._dirs: list[str] = []

    def set_rows(self, rows, keys: tuple[str, ...]) -> None:
        header = ["trial", "state", *keys, "best val acc", "s"]
        if self.columnCount() != len(header):
            self.setColumnCount(len(header))
        self.setHorizontalHeaderLabels(header)
        self.setRowCount(len(rows))
        self._dirs = [r.run_dir for r in rows]
        for i, r in enumerate(rows):
            cells = [
                str(r.number),
                r.state.lower(),
                *(_fmt(r.params[k]) if k in r.params else "" for k in keys),
                _pct(r.value),
                "" if r.seconds is None else f"{r.seconds:.0f}",
            ]
            for j, text in enumerate(cells):
                item = self.item(i, j)
                if item is None:
                    item = QTableWidgetItem()
                    self.setItem(i, j, item)
                if item.text() != text:
                    item.setText(text)
                align = Qt.AlignmentFlag.AlignLeft if j == 1 else Qt.AlignmentFlag.AlignRight
                item.setTextAlignment(align | Qt.AlignmentFlag.AlignVCenter)

    def run_dir(self, row: int) -> str:
        return self._dirs[row] if 0 <= row < len(self._dirs) else ""

    def _on_view_double_clicked(self, row: int, _column: int) -> None:
        path = self.run_dir(row)
        if path:
            self.runActivated.emit(path)


class ScatterView(pg.GraphicsLayoutWidget):
    """Best validation accuracy against each parameter, one small plot per parameter."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plots: dict[str, tuple[pg.PlotItem, pg.ScatterPlotItem]] = {}
        self._keys: tuple[str, ...] = ()

    def _layout(self, space: tuple[SpaceParam, ...]) -> None:
        keys = tuple(p.key for p in space)
        if keys == self._keys:
            return
        self.clear()
        self.plots = {}
        self._keys = keys
        cols = min(3, max(1, len(space)))
        for i, p in enumerate(space):
            item = self.addPlot(row=i // cols, col=i % cols)
            item.setLabel("bottom", f"{p.key} (log10)" if p.log else p.key)
            if i % cols == 0:
                item.setLabel("left", "val acc")
            item.showGrid(x=True, y=True, alpha=0.2)
            for side in ("bottom", "left"):
                item.getAxis(side).enableAutoSIPrefix(False)
            if p.choices:
                ticks = [(k, _fmt(c)) for k, c in enumerate(p.choices)]
                item.getAxis("bottom").setTicks([ticks])
            scatter = pg.ScatterPlotItem(size=9, pen=None)
            item.addItem(scatter)
            self.plots[p.key] = (item, scatter)

    def set_rows(self, rows, space: tuple[SpaceParam, ...]) -> None:
        self._layout(space)
        for p in space:
            _item, scatter = self.plots[p.key]
            spots = []
            for r in rows:
                if p.key not in r.params or r.value is None:
                    continue
                v = r.params[p.key]
                x = list(p.choices).index(v) if p.choices and v in p.choices else v
                if p.log:
                    x = math.log10(x)
                colour = {"COMPLETE": DONE_COLOUR, "PRUNED": PRUNED_COLOUR}.get(
                    r.state, OTHER_COLOUR
                )
                spots.append({"pos": (float(x), r.value), "brush": pg.mkBrush(*colour, 200)})
            scatter.setData(spots)


class ParallelView(pg.PlotWidget):
    """Parallel coordinates: one axis per parameter and one for the accuracy, each trial a line
    over the normalised axes, coloured from poor (light) to good (dark)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.getPlotItem().setTitle("parallel coordinates")
        add_export_menu(self.getPlotItem(), "parallel coordinates")
        self.getPlotItem().showGrid(x=True, y=False, alpha=0.4)
        self.getPlotItem().hideAxis("left")
        self.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        self.setMouseEnabled(x=False, y=False)
        self.lines: list[pg.PlotDataItem] = []
        self.labels: list[pg.TextItem] = []
        self.cmap = pg.colormap.get("viridis")

    def set_rows(self, rows, space: tuple[SpaceParam, ...]) -> None:
        axes = [p.key for p in space] + ["val acc"]
        self.getPlotItem().getAxis("bottom").setTicks([list(enumerate(axes))])
        self.setXRange(-0.45, len(axes) - 0.55, padding=0)  # room for the end labels
        self.setYRange(-0.08, 1.08, padding=0)
        shown = [r for r in rows if r.value is not None]
        values = [r.value for r in shown]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        while len(self.lines) < len(shown):
            line = pg.PlotDataItem()
            self.addItem(line)
            self.lines.append(line)
        for line in self.lines[len(shown) :]:
            line.setData([], [])
        for line, r in zip(self.lines, sorted(shown, key=lambda r: r.value)):
            ys = [
                position(p, r.params.get(p.key)) if p.key in r.params else math.nan for p in space
            ]
            acc = (r.value - lo) / (hi - lo) if hi > lo else 0.5
            ys.append(acc)
            if r.state == "COMPLETE":
                colour = self.cmap.map(0.15 + 0.85 * acc, mode="qcolor")
                pen = pg.mkPen(colour, width=2)
            else:
                pen = pg.mkPen(*OTHER_COLOUR, width=1, style=Qt.PenStyle.DashLine)
            line.setData(np.arange(len(ys), dtype=float), np.asarray(ys, float), pen=pen)
        self._axis_labels(space, lo, hi)

    def _axis_labels(self, space, lo, hi) -> None:
        for t in self.labels:
            self.removeItem(t)
        self.labels = []
        ends = [
            (_fmt(p.choices[0]), _fmt(p.choices[-1])) if p.choices else (_fmt(p.low), _fmt(p.high))
            for p in space
        ]
        ends.append((_pct(lo), _pct(hi)))
        for i, (bottom, top) in enumerate(ends):
            for text, y, anchor in ((bottom, 0.0, (0.5, 0.0)), (top, 1.0, (0.5, 1.0))):
                label = pg.TextItem(text, anchor=anchor, color=(110, 110, 110))
                label.setPos(i, y)
                self.addItem(label)
                self.labels.append(label)


class ImportanceView(pg.PlotWidget):
    """Parameter importances (optuna's fANOVA) as horizontal bars; a note when too few trials."""

    def __init__(self, parent=None):
        super().__init__(parent)
        item = self.getPlotItem()
        item.setTitle("parameter importance")
        add_export_menu(item, "parameter importance")
        item.setLabel("bottom", "share of the variance in val acc")
        item.getAxis("bottom").enableAutoSIPrefix(False)
        self.bars = pg.BarGraphItem(
            x0=[], y=[], height=0.6, width=[], brush=pg.mkBrush(*DONE_COLOUR)
        )
        self.addItem(self.bars)
        self.note = pg.TextItem("", anchor=(0.5, 0.5), color=(110, 110, 110))
        self.addItem(self.note)
        self.setMouseEnabled(x=False, y=False)

    def set_importances(self, importances: dict, note: str = "") -> None:
        keys = list(importances)[::-1]  # the most important on top
        values = [importances[k] for k in keys]
        self.bars.setOpts(x0=[0] * len(keys), y=list(range(len(keys))), width=values, height=0.6)
        self.getPlotItem().getAxis("left").setTicks([list(enumerate(keys))])
        self.setXRange(0, max(values + [0.5]) * 1.05, padding=0)
        self.setYRange(-0.6, max(len(keys), 1) - 0.4, padding=0)
        self.note.setText("" if keys else (note or "no importances yet"))
        self.note.setPos(max(values + [0.5]) * 0.5, 0)
