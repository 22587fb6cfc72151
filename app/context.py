"""State shared between panels: the open data set, the current run and checkpoint, settings.

Panels talk to each other only through this object (signals), never by reaching into each other.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings, Signal


class AppContext(QObject):
    """Shared, observable application state.

    Signals
    -------
    datasetChanged(str)
        A data set spec (``fsdd:PATH``, ``folder:PATH``...) became the current one.
    runChanged(str)
        A run folder became the current one (Training tab).
    checkpointChanged(str)
        A checkpoint file became the current one (for the Live tab and export).
    statusMessage(str)
        A one-line message for the status bar.
    """

    datasetChanged = Signal(str)
    runChanged = Signal(str)
    checkpointChanged = Signal(str)
    statusMessage = Signal(str)

    def __init__(self, settings: QSettings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.dataset_spec: str = ""
        self.run_dir: str = ""
        self.checkpoint: str = ""

    def set_dataset(self, spec: str) -> None:
        if spec != self.dataset_spec:
            self.dataset_spec = spec
            self.datasetChanged.emit(spec)

    def set_run(self, run_dir: str) -> None:
        if run_dir != self.run_dir:
            self.run_dir = run_dir
            self.runChanged.emit(run_dir)

    def set_checkpoint(self, path: str) -> None:
        if path != self.checkpoint:
            self.checkpoint = path
            self.checkpointChanged.emit(path)

    def status(self, message: str) -> None:
        self.statusMessage.emit(message)
