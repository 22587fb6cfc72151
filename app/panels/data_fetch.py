"""The Data tab's downloads: fetch a published data set (``engine.data.fetch``) on a worker, with
a progress strip and a Cancel button, then hand its spec to the panel to open.

``FetchController.start(name)`` opens a set already fetched at once; otherwise it downloads it
(an interrupted download resumes next time). Signals: ``fetched(spec, licence)`` and
``failed(text)`` with the engine's one-line message; the strip keeps the licence in view.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from app.workers import EventBuffer, PanelJobs
from engine.data.catalog import CATALOG, entry
from engine.data.fetch import fetch, fetched, fetched_spec
from engine.errors import SnnError

GET_GOING = (
    "To get going, pick a data set under <b>Examples</b> to download it (the Free Spoken Digit "
    "Dataset is 24 MB), or record your own clips in the <b>Live</b> tab's record mode."
)


def fetch_entries() -> list[tuple[str, str]]:
    """``(menu text, name)`` for each fetchable set; fetched ones say so."""
    try:
        have = fetched()
    except SnnError:
        have = {}
    out = []
    for row in CATALOG:
        state = "downloaded" if row.name in have else f"download ~{row.approx_mb} MB"
        out.append((f"{row.title} [{state}]", row.name))
    return out


class FetchStrip(QWidget):
    """``Downloading NAME: [=====    ] [Cancel]``, shown while a fetch runs."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.cancel_button = QPushButton("Cancel")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.bar, 1)
        lay.addWidget(self.cancel_button)
        self.setVisible(False)

    def show_running(self, name: str) -> None:
        self.label.setText(f"Downloading {name}:")
        self.bar.setValue(0)
        self.bar.setFormat("connecting...")
        self.bar.setVisible(True)
        self.cancel_button.setVisible(True)
        self.setVisible(True)

    def show_note(self, text: str) -> None:
        """After a fetch: the set's licence (and any warning) stays in view."""
        self.label.setText(text)
        self.bar.setVisible(False)
        self.cancel_button.setVisible(False)
        self.setVisible(True)

    def show_event(self, ev) -> None:
        if ev.phase == "download" and ev.total:
            self.bar.setValue(int(1000 * ev.fraction))
            self.bar.setFormat(f"{ev.file}: {ev.done / 1e6:.1f} of {ev.total / 1e6:.1f} MB")
        elif ev.message:
            self.bar.setFormat(ev.message)


class FetchController(QObject):
    fetched = Signal(str, str)
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.strip = FetchStrip()
        self.jobs = PanelJobs(self)  # "fetch": one download at a time
        self.name = ""
        self.buffer = EventBuffer(self._on_buffer_events, parent=self)
        self.strip.cancel_button.clicked.connect(self.cancel)

    def start(self, name: str) -> None:
        if self.jobs.busy("fetch"):
            self.failed.emit(f"{self.name} is still downloading: cancel it first")
            return
        try:
            row = entry(name)
            if row.name in fetched():
                self.strip.show_note(f"{row.title}. Licence: {row.licence}")
                self.fetched.emit(fetched_spec(row.name), row.licence)
                return
        except SnnError as exc:
            self.failed.emit(str(exc))
            return
        self.name = row.name
        self.strip.show_running(row.name)
        self.jobs.start(
            "fetch",
            lambda stop, n=row.name: fetch(n, stop=stop),
            on_progress=self.buffer.push,
            on_finished=self._on_handle_finished,
            on_failed=self._on_handle_failed,
        )

    def cancel(self) -> None:
        """Stop the download; the partial file stays, so the next fetch resumes it."""
        if self.jobs.busy("fetch"):
            self.jobs.stop("fetch")
            self.strip.bar.setFormat("stopping...")

    def is_running(self) -> bool:
        return self.jobs.busy("fetch")

    def shutdown(self) -> None:
        self.jobs.stop_all()
        self.buffer.stop()

    def _on_buffer_events(self, events) -> None:
        self.strip.show_event(events[-1])

    def _on_handle_finished(self, result) -> None:
        self.strip.setVisible(False)
        self.buffer.flush()
        if result is None:  # cancelled
            self.failed.emit(f"{self.name}: download cancelled (it resumes next time)")
            return
        note = f"{entry(result.name).title}, downloaded. Licence: {result.licence}"
        if result.warnings:
            note += " (" + "; ".join(result.warnings) + ")"
        self.strip.show_note(note)
        self.fetched.emit(result.spec, result.licence)

    def _on_handle_failed(self, text: str) -> None:
        self.strip.setVisible(False)
        self.failed.emit(text)
