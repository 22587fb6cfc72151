"""The main window: builds one tab per panel and wires them to the shared context."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QTabWidget

from app.context import AppContext
from app.panels import TABS
from app.settings import open_settings
from engine import __version__
from engine.paths import resource_path

log = logging.getLogger(__name__)


def available_tabs() -> list[tuple[str, str, str, str]]:
    """The tabs whose panel module exists in this build, in order."""
    return [t for t in TABS if importlib.util.find_spec(t[2]) is not None]


class MainWindow(QMainWindow):
    def __init__(self, settings=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"snn-explorer {__version__}")
        self.setWindowIcon(QIcon(str(resource_path("icon.svg"))))
        self.settings = settings if settings is not None else open_settings()
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
        self._build_menu()
        self.resize(1280, 820)
        self._restore()

    # ----- menus
    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
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
