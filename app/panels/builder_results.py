"""The AudioSet builder's preview: per-class counts after each filter (table + bars), overlaps,
and the labels that most often ride along with each class."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.plotting import color, make_plot
from engine.audioset.selection import Selection

STEP_TITLES = {
    "labelled": "labelled",
    "no overlap": "no overlap",
    "exclude": "excluded",
    "min length": "min length",
    "cap": "capped",
}
N_STEPS = len(STEP_TITLES)


def _table(columns: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(columns)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().setVisible(False)
    t.setAlternatingRowColors(True)
    return t


def _cell(value, align_right: bool = False, grey: bool = False) -> QTableWidgetItem:
    text = f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)
    item = QTableWidgetItem(text)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if grey:
        item.setForeground(Qt.GlobalColor.gray)
    return item


class CountsView(QWidget):
    """Steps x classes table, grouped bar chart (one bar per step per class), overlap summary."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.summary = QLabel("Preview to see how many clips each class keeps after each filter.")
        self.summary.setWordWrap(True)
        self.table = _table(["step"])
        self.table.setMinimumHeight(120)
        self.plot = make_plot("Clips per class after each step", "", "clips")
        self.plot.setMinimumHeight(200)
        # one legend row across the top, above the bars (the y range leaves room for it)
        self.legend = self.plot.getPlotItem().addLegend(offset=(10, 5), colCount=N_STEPS)
        self.bars = []
        for i, title in enumerate(STEP_TITLES.values()):
            bar = pg.BarGraphItem(x=[], height=[], width=0.15, brush=color(i), name=title)
            self.plot.addItem(bar)
            self.bars.append(bar)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.plot)
        split.setSizes([150, 260])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.summary)
        lay.addWidget(split, 1)

    def show_selection(self, sel: Selection) -> None:
        names = list(sel.class_names)
        t = self.table
        t.clear()
        t.setColumnCount(len(names) + 3)
        t.setHorizontalHeaderLabels(["step", *names, "total", "what it did"])
        t.setRowCount(len(sel.steps))
        for r, step in enumerate(sel.steps):
            grey = not step.active
            t.setItem(r, 0, _cell(STEP_TITLES.get(step.name, step.name), grey=grey))
            for c, v in enumerate(step.counts):
                t.setItem(r, c + 1, _cell(int(v), True, grey))
            t.setItem(r, len(names) + 1, _cell(int(sum(step.counts)), True, grey))
            t.setItem(
                r, len(names) + 2, _cell(step.description if step.active else "off", grey=grey)
            )
        header = t.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        x = np.arange(len(names), dtype=float)
        width = 0.8 / N_STEPS
        for i, bar in enumerate(self.bars):
            heights = [s.counts for s in sel.steps][i] if i < len(sel.steps) else [0] * len(names)
            bar.setOpts(
                x=x - 0.4 + width * (i + 0.5), height=np.asarray(heights, float), width=width
            )
        self.plot.getPlotItem().getAxis("bottom").setTicks([list(enumerate(names))])
        self.plot.getPlotItem().setXRange(-0.6, len(names) - 0.4, padding=0)
        top = max((max(s.counts) for s in sel.steps if s.counts), default=1)
        self.plot.getPlotItem().setYRange(0, top * 1.2, padding=0)
        pairs = ", ".join(f"{names[a]} & {names[b]} {n:,}" for a, b, n in sel.overlaps) or "none"
        bad = f"; {sel.malformed_count:,} malformed rows skipped" if sel.malformed_count else ""
        self.summary.setText(
            f"<b>{len(sel.clips):,} clips selected</b> from {sel.rows:,} segments "
            f"({', '.join(sel.sources)}{bad}). Overlaps removed: <b>{sel.overlap_removed:,}</b> "
            f"clips in more than one class ({pairs})."
        )

    def clear(self) -> None:
        self.table.setRowCount(0)
        for bar in self.bars:
            bar.setOpts(x=[], height=[])


class CooccurrenceView(QWidget):
    """For each class: the most common labels outside it and the labels inside it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = _table(
            ["class", "other labels on its clips", "clips", "its own sub-labels", "clips"]
        )
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        note = QLabel(
            "Labels that co-occur with each class in the selected clips: outside the class "
            "(noise candidates to exclude) and inside it (what the class is made of)."
        )
        note.setWordWrap(True)
        lay.addWidget(note)
        lay.addWidget(self.table, 1)

    def show_selection(self, sel: Selection, top: int = 8) -> None:
        t = self.table
        rows = []
        for c, name in enumerate(sel.class_names):
            outside, inside = sel.cooccurring[c][:top], sel.sublabels[c][:top]
            for k in range(max(len(outside), len(inside), 1)):
                o = outside[k] if k < len(outside) else ("", "")
                i = inside[k] if k < len(inside) else ("", "")
                rows.append((name if k == 0 else "", o[0], o[1], i[0], i[1]))
        t.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                t.setItem(r, c, _cell(value, align_right=c in (2, 4)))
        header = t.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
