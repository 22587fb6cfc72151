"""Runs pane of the Training tab: a folder of run folders, their accuracy curves overlaid and a
comparison table (best accuracy, time per epoch, parameters, peak memory, SynOps/MACs).

A run is the folder ``snn-explorer train --out`` writes, so runs from the command line and from
the GUI sit side by side.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.panels.training_views import epoch_ticks
from app.plotting import color, legend_brush, make_plot
from engine.train.cv_folder import cv_row, list_cvs
from engine.train.run_folder import (
    COMPARISON_COLUMNS,
    RunInfo,
    accuracy_curves,
    comparison_rows,
    list_runs,
)

OVERLAY_DEFAULT = 4  # new runs are ticked for the overlay while fewer than this are


class RunsPane(QWidget):
    """Signals
    -------
    openRequested(str)
        The user asked to open a run folder in the tab's views (double click or "Open").
    folderChanged(str)
        The runs folder changed.
    """

    openRequested = Signal(str)
    folderChanged = Signal(str)

    def __init__(self, folder: str, parent=None):
        super().__init__(parent)
        self.folder = QLineEdit(folder)
        browse = QPushButton("Folder...")
        self.refresh_button = QPushButton("Refresh")
        self.open_button = QPushButton("Open selected")
        self.open_dir_button = QPushButton("Open run folder...")
        top = QHBoxLayout()
        top.addWidget(self.folder, 1)
        top.addWidget(browse)
        top.addWidget(self.refresh_button)
        top.addWidget(self.open_button)
        top.addWidget(self.open_dir_button)
        self.table = QTableWidget(0, len(COMPARISON_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COMPARISON_COLUMNS))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setToolTip("Tick runs to overlay their curves; double-click one to open it")
        self.overlay = make_plot("Validation accuracy of the ticked runs", "epoch", "accuracy")
        self.overlay.getPlotItem().addLegend(
            offset=(-6, -6), labelTextSize="8pt", brush=legend_brush(210)
        )
        self.overlay.setYRange(0, 1, padding=0.02)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.overlay)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(split, 1)

        self.runs: list[RunInfo] = []
        self.checked: set[str] = set()  # runs overlaid
        self.known: set[str] = set()  # runs listed before (a new one may be ticked)
        self.curves: dict[str, pg.PlotDataItem] = {}

        browse.clicked.connect(self._on_browse_clicked)
        self.refresh_button.clicked.connect(self.refresh)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.open_dir_button.clicked.connect(self._on_open_dir_clicked)
        self.folder.editingFinished.connect(self._on_folder_edited)
        self.table.cellDoubleClicked.connect(self._on_table_double_clicked)
        self.table.itemChanged.connect(self._on_table_item_changed)

    # ----- handlers
    def _on_browse_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of runs", self.folder.text())
        if path:
            self.set_folder(path)

    def _on_folder_edited(self) -> None:
        self.checked, self.known = set(), set()
        self.folderChanged.emit(self.folder.text())
        self.refresh()

    def _on_open_clicked(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.runs):
            self.openRequested.emit(self.runs[row].path)

    def _on_open_dir_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Run folder", self.folder.text())
        if path:
            self.openRequested.emit(path)

    def _on_table_double_clicked(self, row: int, _col: int) -> None:
        if 0 <= row < len(self.runs):
            self.openRequested.emit(self.runs[row].path)

    def _on_table_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 0:
            return
        path = item.data(Qt.ItemDataRole.UserRole)
        if item.checkState() == Qt.CheckState.Checked:
            self.checked.add(path)
        else:
            self.checked.discard(path)
        self._draw_overlay()

    # ----- API
    def set_folder(self, path: str) -> None:
        self.folder.setText(path)
        self.checked, self.known = set(), set()
        self.folderChanged.emit(path)
        self.refresh()

    def set_checked(self, paths: list[str]) -> None:
        """Tick exactly these runs for the overlay."""
        self.checked = set(paths)
        self.known |= self.checked
        self.refresh()

    def refresh(self) -> None:
        """Re-read the folder; keep the ticks."""
        self.runs = list_runs(self.folder.text()) if self.folder.text().strip() else []
        for r in self.runs:  # newest first
            if r.path not in self.known and len(self.checked) < OVERLAY_DEFAULT:
                self.checked.add(r.path)
            self.known.add(r.path)
        self.table.blockSignals(True)
        rows = comparison_rows(self.runs)
        # a cross-validation folder is one row (the mean over its folds) after the runs
        folder = self.folder.text().strip()
        rows += [row for cv in (list_cvs(folder) if folder else []) if (row := cv_row(cv))]
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, text in enumerate(row.cells()):
                item = QTableWidgetItem(text)
                if j == 0:
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    item.setData(Qt.ItemDataRole.UserRole, row.path)
                    ticked = row.path in self.checked
                    item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
                    item.setToolTip(row.path)
                elif j >= 3:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(i, j, item)
        self.table.blockSignals(False)
        self._draw_overlay()

    def _draw_overlay(self) -> None:
        wanted = [r for r in self.runs if r.path in self.checked]
        for path in list(self.curves):
            if path not in {r.path for r in wanted}:
                self.overlay.removeItem(self.curves.pop(path))
        for i, run in enumerate(wanted):
            epochs, _train, val = accuracy_curves(run)
            label = f"{run.name} ({run.model})"
            if run.path not in self.curves:
                self.curves[run.path] = self.overlay.plot(
                    name=label,
                    pen=pg.mkPen(color(i), width=2),
                    symbol="o",
                    symbolSize=5,
                    symbolBrush=color(i),
                )
            self.curves[run.path].setData(epochs, val)
        longest = max((len(accuracy_curves(r)[0]) for r in wanted), default=0)
        epoch_ticks(self.overlay, longest)

    def plots(self) -> dict:
        return {"runs overlay": self.overlay}
