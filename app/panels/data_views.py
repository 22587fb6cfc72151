"""Views of the Data tab: summary and class table, class-balance chart, examples grid.

Plot items are created when a data set is shown and updated with ``setData``/``setImage``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QListWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.plotting import add_export_menu, color, grey_lut, make_plot

SPLIT_COLOURS = {"train": color(0), "val": color(1), "test": color(2)}


def short(name: str, n: int = 14) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


class SummaryView(QWidget):
    """Headline facts, a per-class table and the list of skipped files."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.facts = QLabel()
        self.facts.setWordWrap(True)
        self.facts.setTextFormat(Qt.TextFormat.RichText)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.proposal = QLabel()  # the feature settings the data call for
        self.proposal.setWordWrap(True)
        self.proposal.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, 5)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setAlternatingRowColors(True)
        self.skipped_label = QLabel()
        self.skipped = QListWidget()
        self.skipped.setMaximumHeight(90)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.facts)
        lay.addWidget(self.proposal)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.skipped_label)
        lay.addWidget(self.skipped)

    def show_summary(self, summary, sizes) -> None:
        s = summary
        rows = [
            f"<b>{s.n_classes}</b> classes, <b>{s.n_items}</b> {'clips' if s.kind == 'audio' else 'images'}",
        ]
        if s.split_counts:
            parts = " / ".join(f"{k} {int(v.sum())}" for k, v in s.split_counts.items())
            rows.append(f"split from the source: {parts}")
        rows.append(
            f"for training (seed 0): train <b>{sizes.train}</b> / val <b>{sizes.val}</b> / "
            f"test <b>{sizes.test}</b>"
        )
        if s.kind == "audio":
            rates = ", ".join(f"{r} Hz ({n})" for r, n in sorted(s.sample_rates.items()))
            chans = ", ".join(f"{c} ch ({n})" for c, n in sorted(s.channels.items()))
            rows.append(f"sample rates: {rates}; channels: {chans}")
            rows.append(
                f"durations {s.min_duration:.2f}-{s.max_duration:.2f} s, "
                f"total {s.total_duration.sum() / 60:.1f} min"
            )
        elif s.image_shape:
            rows.append(f"images {'x'.join(str(v) for v in s.image_shape)} pixels")
        self.facts.setText("<br>".join(rows))

        audio = s.kind == "audio"
        headers = ["class", "items", "train", "val", "test"] + (
            ["mean s", "total s"] if audio else []
        )
        self.table.clear()
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(s.n_classes)
        for c, name in enumerate(s.class_names):
            values = [name, int(s.counts[c])]
            values += [int(sizes.per_class[k][c]) for k in ("train", "val", "test")]
            if audio:
                values += [f"{s.mean_duration[c]:.2f}", f"{s.total_duration[c]:.0f}"]
            for col, v in enumerate(values):
                item = QTableWidgetItem(str(v))
                if col:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(c, col, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(headers)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)

        self.skipped.clear()
        for path, reason in s.skipped:
            self.skipped.addItem(f"{path.rsplit('/', 1)[-1]}: {reason}")
            self.skipped.item(self.skipped.count() - 1).setToolTip(f"{path}\n{reason}")
        self.skipped_label.setText(
            f"Skipped files: <b>{s.n_skipped}</b>"
            + (" (left out, listed below)" if s.n_skipped else "")
        )
        self.skipped.setVisible(s.n_skipped > 0)

    def show_proposal(self, proposal) -> None:
        """One line: the ``engine.audio.feature_proposal`` proposal (hidden for images)."""
        text = proposal.describe() if proposal is not None else ""
        self.proposal.setText(text[:1].upper() + text[1:])
        self.proposal.setToolTip(
            "Training uses these settings when the run gives no [features] (docs/recipe.md)"
        )
        self.proposal.setVisible(bool(text))


class BalanceChart(QWidget):
    """Stacked bars: items per class in the train / val / test splits."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = make_plot("Class balance (items per class and split)", "", "items")
        self.plot.setMouseEnabled(x=False, y=False)
        self.legend = self.plot.getPlotItem().addLegend(
            offset=(-8, 2), labelTextSize="9pt", colCount=3
        )
        self.bars: dict[str, pg.BarGraphItem] = {}
        self.data: dict[str, pg.PlotDataItem] = {}
        for name, rgb in SPLIT_COLOURS.items():
            bar = pg.BarGraphItem(x=[], height=[], width=0.7, brush=pg.mkBrush(*rgb), pen=None)
            self.plot.addItem(bar)
            self.legend.addItem(bar, name)
            self.bars[name] = bar
            # invisible twin holding the counts, so "Save data as CSV" exports them
            self.data[name] = self.plot.plot([], [], pen=None, name=name)
            self.legend.removeItem(self.data[name])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)

    def show_counts(self, class_names, per_split: dict[str, np.ndarray]) -> None:
        x = np.arange(len(class_names), dtype=float)
        base = np.zeros(len(class_names))
        for name in SPLIT_COLOURS:
            h = np.asarray(per_split.get(name, np.zeros(len(x))), dtype=float)
            self.bars[name].setOpts(x=x, height=h, y0=base.copy(), width=0.7)
            self.data[name].setData(x, h)
            base += h
        step = max(1, int(np.ceil(len(class_names) / 16)))
        width = max(6, 110 // max(len(class_names), 1))  # characters that fit under a bar
        ticks = [(i, short(n, width)) for i, n in enumerate(class_names) if i % step == 0]
        self.plot.getPlotItem().getAxis("bottom").setTicks([ticks, []])
        self.plot.setXRange(-0.6, len(class_names) - 0.4, padding=0)
        self.plot.setYRange(0, max(base.max(), 1) * 1.3, padding=0)  # room for the legend


class ExamplesGrid(QWidget):
    """A few examples per class (MFCC or image); click one to select it.

    Signals
    -------
    exampleSelected(int)
        Position in the shown examples of the clicked cell.
    """

    exampleSelected = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel()
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.layout_widget.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.cells: list[tuple[pg.PlotItem, pg.ImageItem, int]] = []
        self.selected = -1
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.layout_widget, 1)

    def show_examples(self, examples, class_names, image: bool, what: str) -> None:
        """One row per class (its name on the left), its examples side by side."""
        self.layout_widget.clear()
        self.cells = []
        self.selected = -1
        note = "" if image else " (each coefficient scaled to its own range for display)"
        self.title.setText(
            f"<b>{'Images' if image else what}</b> of a few examples per class{note}; "
            "click one to select it"
        )
        by_class: dict[int, list] = {}
        for pos, ex in enumerate(examples):
            by_class.setdefault(ex.label, []).append((pos, ex))
        cmap = pg.colormap.get("viridis")
        for row, label in enumerate(sorted(by_class)):
            self.layout_widget.addLabel(short(class_names[label], 16), row=row, col=0, size="9pt")
            for col, (pos, ex) in enumerate(by_class[label], start=1):
                plot = self.layout_widget.addPlot(row=row, col=col)
                plot.hideAxis("left")
                plot.hideAxis("bottom")
                plot.setMouseEnabled(x=False, y=False)
                plot.hideButtons()
                add_export_menu(plot, f"example_{class_names[label]}_{ex.name}")
                img = pg.ImageItem(axisOrder="row-major")
                if image:
                    plot.getViewBox().invertY(True)
                    plot.getViewBox().setAspectLocked(True)
                    img.setImage(ex.matrix, levels=(0, 1))
                    img.setLookupTable(grey_lut(inverted=True))  # dark strokes on white
                else:
                    img.setColorMap(cmap)
                    img.setImage(display_rows(ex.matrix), levels=(-2.5, 2.5))
                plot.addItem(img)
                plot.getViewBox().autoRange(padding=0.02)
                plot.setToolTip(f"{class_names[label]}: {ex.name}")
                self.cells.append((plot, img, pos))

    def select(self, pos: int) -> None:
        self.selected = pos
        for plot, _img, p in self.cells:
            pen = pg.mkPen((214, 39, 40), width=3) if p == pos else None
            plot.getViewBox().setBorder(pen)

    def _on_scene_clicked(self, ev) -> None:
        for plot, _img, pos in self.cells:
            if plot.sceneBoundingRect().contains(ev.scenePos()):
                self.select(pos)
                self.exampleSelected.emit(pos)
                return


def display_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row standardised over time, so coefficient 0 does not wash out the others."""
    m = np.asarray(matrix, dtype=np.float32)
    return (m - m.mean(axis=1, keepdims=True)) / np.maximum(m.std(axis=1, keepdims=True), 1e-6)
