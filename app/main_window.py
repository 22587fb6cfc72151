"""The main window: builds one tab per panel and wires them to the shared context.

Desktop conventions (docs/desktop.md): File > Open data set / run / checkpoint, Recent (per kind,
in the settings file), Export current plot; a dropped folder, CSV, audio file, run folder or
checkpoint goes to the tab that takes it (:mod:`app.open_paths`); Ctrl+Return starts training,
Esc stops, Ctrl+S exports the current plot, Ctrl+O opens a data set; plots follow the system
palette (dark or light).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

import pyqtgraph as pg
from PySide6.QtCore import QByteArray
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow, QMessageBox, QTabWidget

from app.context import AppContext
from app.open_paths import TAB_OF, path_kind
from app.panels import TABS
from app.plotting import export_plot, follow_palette
from app.settings import add_recent, open_settings, recent_paths
from engine import __version__
from engine.paths import resource_path

log = logging.getLogger(__name__)

RECENT_KINDS = (("data", "Data sets"), ("run", "Runs"), ("checkpoint", "Checkpoints"))


def available_tabs() -> list[tuple[str, str, str, str]]:
    """The tabs whose panel module exists in this build, in order."""
    return [t for t in TABS if importlib.util.find_spec(t[2]) is not None]


class MainWindow(QMainWindow):
    def __init__(self, settings=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"snn-explorer {__version__}")
        self.setWindowIcon(QIcon(str(resource_path("icon.svg"))))
        self.settings = settings if settings is not None else open_settings()
        follow_palette(QApplication.palette())  # before any plot is made
        self.context = AppContext(self.settings, self)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.panels: dict[str, object] = {}
        for name, title, module, cls in available_tabs():
            panel = getattr(importlib.import_module(module), cls)(self.context)
            panel.setObjectName(f"{name}_panel")
            self.panels[name] = panel
            self.tabs.addTab(panel, title)
        self.context.statusMessage.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.context.datasetChanged.connect(lambda spec: self._remember("data", spec))
        self.context.runChanged.connect(lambda path: self._remember("run", path))
        self.context.checkpointChanged.connect(lambda path: self._remember("checkpoint", path))
        self.setAcceptDrops(True)
        self._build_menu()
        self.resize(1280, 820)
        self._restore()

    # ----- menus
    def _action(self, menu, text: str, slot, shortcuts=()) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        return action

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Open &data set...", self._on_open_data_triggered, ["Ctrl+O"])
        self._action(file_menu, "Open data set &manifest (CSV)...", self._on_open_csv_triggered)
        self._action(file_menu, "Open &run...", self._on_open_run_triggered)
        self._action(file_menu, "Open &checkpoint...", self._on_open_checkpoint_triggered)
        self.recent_menu = file_menu.addMenu("Recen&t")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        file_menu.addSeparator()
        self._action(
            file_menu, "&Export current plot...", self._on_export_plot_triggered, ["Ctrl+S"]
        )
        file_menu.addSeparator()
        quit_action = self._action(file_menu, "&Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        run_menu = self.menuBar().addMenu("&Run")
        self.start_action = self._action(
            run_menu, "&Start training", self.start_training, ["Ctrl+Return", "Ctrl+Enter"]
        )
        self.stop_action = self._action(run_menu, "S&top", self.stop_jobs, ["Esc"])
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About", self)
        about.triggered.connect(self._on_about_triggered)
        help_menu.addAction(about)

    def _on_about_triggered(self) -> None:
        QMessageBox.about(
            self,
            "About snn-explorer",
            f"snn-explorer {__version__}\nSpiking neural networks on sound: LIF neurons, spike "
            "encodings, audio data sets, CSNN training and live classification.",
        )

    # ----- tabs
    def show_tab(self, name: str) -> None:
        names = list(self.panels)
        if name not in names:
            raise KeyError(name)
        self.tabs.setCurrentIndex(names.index(name))

    # ----- opening things (menus, drops, Recent)
    def open_path(self, path: str) -> str | None:
        """Hand ``path`` to the tab that takes it (see :mod:`app.open_paths`); that tab's name,
        or None (and a status message) when nothing here opens it."""
        kind = path_kind(path)
        tab = TAB_OF.get(kind)
        if kind == "audio" and not getattr(self.panels.get("live"), "predictor", None):
            tab = "encoding"  # no model to classify with: show the sound's encoding instead
        if tab not in self.panels:
            self.statusBar().showMessage(f"{path}: not a data set, run, checkpoint or audio", 8000)
            return None
        panel = self.panels[tab]
        if kind == "run":
            panel.open_run(path)
        elif kind == "checkpoint":
            panel.load_checkpoint(path)
        elif kind == "data":
            panel.open_spec(path)
        elif tab == "live":
            panel.classify_path(path)
        else:
            panel.open_path(kind, path)
        self.show_tab(tab)
        if kind in dict(RECENT_KINDS):
            self._remember(kind, path)
        return tab

    def _open_recent(self, kind: str, value: str) -> None:
        if kind == "data" and "data" in self.panels:
            self.panels["data"].open_spec(value)  # a spec (fsdd:..., mnist:...) or a path
            self.show_tab("data")
        else:
            self.open_path(value)

    def _remember(self, kind: str, value: str) -> None:
        if value:
            add_recent(self.settings, kind, value)

    def _fill_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        for kind, title in RECENT_KINDS:
            paths = recent_paths(self.settings, kind)
            if not paths:
                continue
            menu.addSection(title)
            for value in paths:
                act = menu.addAction(value)
                act.setData(kind)
                act.triggered.connect(lambda _=False, k=kind, v=value: self._open_recent(k, v))
        if menu.isEmpty():
            menu.addAction("(nothing opened yet)").setEnabled(False)

    def _on_open_data_triggered(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a data set folder")
        if folder:
            self.open_path(folder)

    def _on_open_csv_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a data set manifest", "", "Manifest (*.csv);;All files (*)"
        )
        if path:
            self.open_path(path)

    def _on_open_run_triggered(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder")
        if folder:
            self.open_path(folder)

    def _on_open_checkpoint_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a checkpoint", "", "Checkpoint (*.pt *.pth);;All files (*)"
        )
        if path:
            self.open_path(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(u.isLocalFile() and path_kind(u.toLocalFile()) for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        opened = [
            self.open_path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()
        ]
        if any(opened):
            event.acceptProposedAction()

    # ----- running and plots
    def start_training(self) -> None:
        """Ctrl+Return: start training the Training tab's settings (shown on that tab)."""
        panel = self.panels.get("training")
        if panel is not None and not panel.is_running():
            self.show_tab("training")
            panel.start()

    def stop_jobs(self) -> None:
        """Esc: stop training, and the current tab's own job (listening, say)."""
        training = self.panels.get("training")
        if training is not None and training.is_running():
            training.request_stop()
        current = self.tabs.currentWidget()
        if current is not training and hasattr(current, "stop"):
            current.stop()

    def current_plot(self):
        """The plot Ctrl+S exports: the one with the focus or under the mouse in the current tab,
        else its largest visible plot (None when the tab shows none)."""
        panel = self.tabs.currentWidget()
        if panel is None:
            return None
        views = [
            w
            for w in panel.findChildren(pg.GraphicsView)
            if isinstance(w, (pg.PlotWidget, pg.GraphicsLayoutWidget)) and w.isVisible()
        ]
        for w in views:
            if w.hasFocus() or w.underMouse():
                return w
        return max(views, key=lambda w: w.width() * w.height(), default=None)

    def export_current_plot(self, path: str | None = None) -> str | None:
        """Write the current plot to ``path`` (.png, .svg or .csv; asked for when None)."""
        target = self.current_plot()
        if target is None:
            self.statusBar().showMessage("no plot on this tab to export", 8000)
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self,
                "Export the current plot",
                "plot.png",
                "PNG image (*.png);;SVG image (*.svg);;CSV data (*.csv)",
            )
            if not path:
                return None
        try:
            export_plot(target, path)
        except (OSError, ValueError) as exc:
            self.statusBar().showMessage(str(exc), 8000)
            return None
        self.statusBar().showMessage(f"plot written to {path}", 8000)
        return path

    def _on_export_plot_triggered(self) -> None:
        self.export_current_plot()

    # ----- persistence
    def _restore(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        state = s.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        for name, panel in self.panels.items():
            if hasattr(panel, "restore_state"):
                s.beginGroup(name)
                try:
                    panel.restore_state(s)
                except Exception:  # a stale or hand-edited settings file must not stop start-up
                    log.warning("could not restore the %s tab's settings", name, exc_info=True)
                finally:
                    s.endGroup()
        try:
            index = int(s.value("window/tab", 0))
        except (TypeError, ValueError):
            index = 0
        if 0 <= index < self.tabs.count():
            self.tabs.setCurrentIndex(index)

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/tab", self.tabs.currentIndex())
        for name, panel in self.panels.items():
            if hasattr(panel, "save_state"):
                s.beginGroup(name)
                try:
                    panel.save_state(s)
                finally:
                    s.endGroup()
        s.sync()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        for panel in self.panels.values():
            if hasattr(panel, "shutdown"):
                panel.shutdown()
        self.save_settings()
        super().closeEvent(event)


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("snn-explorer")
    app.setOrganizationName("snn-explorer")
    app.setApplicationVersion(__version__)
    return app


def settle_heap() -> None:
    """Move every object that exists once the window is built out of the garbage collector's
    sight (``gc.freeze``): modules, torch, the widgets. A full collection then scans only what
    came later; measured while training on 2 cores, the worst UI stall (a full collection of the
    hundreds of thousands of start-up objects, 180-235 ms, on whichever thread ran it while
    holding the GIL) fell from 246 to 75 ms."""
    import gc

    gc.collect()
    gc.freeze()


def run_gui() -> int:
    from engine.train.memory import keep_freed_memory

    keep_freed_memory()  # the desktop app trains: keep its large temporaries' pages (see there)
    app = make_app()
    window = MainWindow()
    window.show()
    settle_heap()
    return app.exec()
