"""The AudioSet builder's download box: where and how to fetch, progress, failures by reason."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.audioset.download import (
    DownloadConfig,
    DownloadProgress,
    DownloadResult,
    DownloadStarted,
)

REASON_HELP = {
    "unavailable": "removed, terminated or blocked videos",
    "private": "private videos",
    "http-404": "no such file on the server",
    "network": "connection problems (retried)",
    "timeout": "no answer in time (retried)",
    "truncated": "shorter than the segment (retried)",
    "rate-limited": "YouTube asks to slow down or sign in",
    "invalid-id": "not an 11-character YouTube ID",
    "age-restricted": "needs a signed-in account",
}


class DownloadBox(QWidget):
    """Output folder and download options, Download / Cancel, progress and failures.

    Signals
    -------
    browseRequested(), saveRequested(), downloadRequested(), cancelRequested(), useRequested()
    """

    browseRequested = Signal()
    saveRequested = Signal()
    downloadRequested = Signal()
    cancelRequested = Signal()
    useRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.out_dir = QLineEdit()
        self.out_dir.setPlaceholderText("output folder (one sub-folder per class)")
        self.browse = QPushButton("Browse...")
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir, 1)
        out_row.addWidget(self.browse)
        self.format = QComboBox()
        self.format.addItems(["wav", "flac"])
        self.sample_rate = QSpinBox()
        self.sample_rate.setRange(1000, 192000)
        self.sample_rate.setSingleStep(1000)
        self.sample_rate.setValue(16000)
        self.sample_rate.setSuffix(" Hz")
        self.jobs = QSpinBox()
        self.jobs.setRange(1, 64)
        self.jobs.setValue(4)
        self.url_template = QLineEdit()
        self.url_template.setPlaceholderText("YouTube, or a mirror: http://host/audio/{ytid}.flac")
        form = QFormLayout()
        form.addRow("Output", out_row)
        opts = QHBoxLayout()
        opts.addWidget(self.format)
        opts.addWidget(self.sample_rate)
        opts.addWidget(QLabel("parallel"))
        opts.addWidget(self.jobs)
        opts.addStretch(1)
        form.addRow("Audio", opts)
        form.addRow("Source", self.url_template)

        self.save = QPushButton("Write manifest")
        self.save.setToolTip("Write manifest.csv and selection.json into the output folder")
        self.start = QPushButton("Download")
        self.cancel = QPushButton("Cancel")
        self.use = QPushButton("Open as data set")
        self.use.setToolTip("Make the downloaded clips the current data set (audioset:DIR)")
        for b in (self.save, self.start, self.cancel, self.use):
            b.setEnabled(False)
        buttons = QHBoxLayout()
        for b in (self.save, self.start, self.cancel, self.use):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.counts = QLabel("Nothing downloaded yet. A rerun resumes where the last one stopped.")
        self.counts.setWordWrap(True)
        self.failures = QTableWidget(0, 3)
        self.failures.setHorizontalHeaderLabels(["failure reason", "clips", "what it means"])
        self.failures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.failures.verticalHeader().setVisible(False)
        header = self.failures.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.counts)
        lay.addWidget(self.failures, 1)

        self.browse.clicked.connect(self.browseRequested)
        self.save.clicked.connect(self.saveRequested)
        self.start.clicked.connect(self.downloadRequested)
        self.cancel.clicked.connect(self.cancelRequested)
        self.use.clicked.connect(self.useRequested)

    def config(self) -> DownloadConfig:
        template = self.url_template.text().strip() or None
        return DownloadConfig(
            jobs=self.jobs.value(), sample_rate=self.sample_rate.value(), url_template=template
        )

    def set_running(self, running: bool, can_start: bool) -> None:
        self.start.setEnabled(can_start and not running)
        self.save.setEnabled(can_start and not running)
        self.cancel.setEnabled(running)
        for w in (self.out_dir, self.browse, self.format, self.sample_rate, self.jobs):
            w.setEnabled(not running)
        self.url_template.setEnabled(not running)

    # ----- progress (called from the panel's EventBuffer timer)
    def show_events(self, events: list) -> None:
        last = None
        for ev in events:
            if isinstance(ev, DownloadStarted):
                self.progress.setRange(0, max(1, ev.total))
                self.counts.setText(
                    f"{ev.total:,} clips: {ev.already_done:,} already done, "
                    f"{ev.skipped_failed:,} failed before (kept), {ev.to_fetch:,} to fetch"
                )
            elif isinstance(ev, DownloadProgress):
                last = ev
        if last is not None:
            self.progress.setRange(0, max(1, last.total))
            self.progress.setValue(last.done + last.failed)
            self.counts.setText(
                f"done <b>{last.done:,}</b> - failed <b>{last.failed:,}</b> - "
                f"pending {last.pending:,} - fetching {last.active} of {last.total:,}"
            )
            self._show_failures(last.failures)

    def show_result(self, result: DownloadResult | None) -> None:
        if result is None:
            return
        self.progress.setRange(0, max(1, result.total))
        self.progress.setValue(result.done + result.failed)
        how = "Cancelled" if result.cancelled else "Finished"
        self.counts.setText(
            f"{how}: <b>{result.done:,}</b> of {result.total:,} clips downloaded, "
            f"{result.failed:,} failed, {result.pending:,} pending."
            + (" Download again to resume." if result.pending else "")
        )
        self._show_failures(result.failures)

    def _show_failures(self, failures) -> None:
        self.failures.setRowCount(len(failures))
        for r, (reason, n) in enumerate(failures):
            self.failures.setItem(r, 0, QTableWidgetItem(reason))
            self.failures.setItem(r, 1, QTableWidgetItem(f"{n:,}"))
            self.failures.setItem(r, 2, QTableWidgetItem(REASON_HELP.get(reason, "")))

    def failure_counts(self) -> dict[str, int]:
        return {
            self.failures.item(r, 0).text(): int(self.failures.item(r, 1).text().replace(",", ""))
            for r in range(self.failures.rowCount())
        }
