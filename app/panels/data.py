"""The Data tab: open a data set, see what it holds, featurise it, listen to its clips.

Shows the classes, counts, splits, durations and sample rates, a class-balance chart, a few
MFCCs (or images) per class, and the skipped files; plays a selected clip when an output
device exists; computes the whole data set's features into the cache off the UI thread, with a
progress bar and a cancel button. Opening a data set here makes it the current one
(``context.set_dataset``) for the other tabs.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.panels.data_controls import DataBar, FeatureForm
from app.panels.data_fetch import GET_GOING, FetchController, fetch_entries
from app.panels.data_jobs import (
    DataOverview,
    examples_job,
    features_job,
    open_job,
    output_device_problem,
    play_job,
    shared_data_specs,
)
from app.panels.data_views import BalanceChart, ExamplesGrid, SummaryView
from app.settings import read_value
from app.widgets import scroll_column
from app.workers import EventBuffer, PanelJobs
from engine.audio.feature_proposal import propose_for_source
from engine.errors import SnnError

EMPTY_TEXT = (
    "<h2>No data set open</h2>"
    f"<p>{GET_GOING}</p>"
    "<p>Or open your own with the bar above, as a spec string or with a button:</p>"
    "<ul>"
    "<li><b>folder:PATH</b> &mdash; one sub-folder of audio files per class "
    "(e.g. <i>001 - Dog bark/</i>, <i>002 - Siren/</i>)</li>"
    "<li><b>csv:PATH</b> &mdash; a manifest with rows <i>path,label[,split[,group]]</i></li>"
    "<li><b>fsdd:PATH</b> &mdash; the Free Spoken Digit Dataset's recordings folder</li>"
    "<li><b>mnist:PATH</b> &mdash; a folder of MNIST IDX files</li>"
    "<li><b>audioset:PATH</b> &mdash; a folder made by the AudioSet builder tab</li>"
    "<li><b>speechcommands:PATH</b>, <b>shd:PATH</b>, <b>ssc:PATH</b> &mdash; those sets as "
    "published; a downloaded set also opens by its name (<i>fsdd</i>, <i>esc50</i>...)</li>"
    "</ul>"
    "<p>WAV, FLAC, OGG and MP3 files are read at any rate; unreadable files are listed and "
    "skipped.</p>"
)


class DataPanel(QWidget):
    def __init__(self, context, parent=None):
        super().__init__(parent)
        self.context = context
        self.examples_available = shared_data_specs()
        self.bar = DataBar(self.examples_available, fetch_entries())
        self.fetcher = FetchController(parent=self)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setVisible(False)
        self.summary = SummaryView()
        self.form = FeatureForm()
        self.chart = BalanceChart()
        self.grid = ExamplesGrid()
        self.selected_label = QLabel("No clip selected")
        self.play_button = QPushButton("Play clip")
        self.play_button.setEnabled(False)
        self.play_note = QLabel()
        self.play_note.setStyleSheet("color: #777;")

        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 4, 0)
        left_lay.addWidget(self.summary, 1)
        left_lay.addWidget(self.form)
        scroll = scroll_column(left, min_width=400)
        play_row = QHBoxLayout()
        play_row.addWidget(self.selected_label, 1)
        play_row.addWidget(self.play_note)
        play_row.addWidget(self.play_button)
        right = QWidget()
        right_lay = QVBoxLayout(right)
        right_lay.setContentsMargins(4, 0, 0, 0)
        right_split = QSplitter(Qt.Orientation.Vertical)
        right_split.addWidget(self.chart)
        right_split.addWidget(self.grid)
        right_split.setSizes([230, 470])
        right_lay.addWidget(right_split, 1)
        right_lay.addLayout(play_row)
        content = QSplitter(Qt.Orientation.Horizontal)
        content.addWidget(scroll)
        content.addWidget(right)
        content.setSizes([430, 850])
        content.setStretchFactor(1, 1)

        self.stack = QStackedWidget()
        self.stack.addWidget(self._empty_page())
        self.stack.addWidget(content)
        lay = QVBoxLayout(self)
        lay.addWidget(self.bar)
        lay.addWidget(self.fetcher.strip)
        lay.addWidget(self.message)
        lay.addWidget(self.stack, 1)

        self.overview: DataOverview | None = None
        self._examples_shown: tuple = ()
        self.feature_set = None
        self.jobs = PanelJobs(self)  # "open", "examples", "features", "play"
        self._play_problem: str | None = None
        self._checked_output = False
        self.buffer = EventBuffer(self._on_buffer_events, parent=self)

        self.bar.specEntered.connect(self._on_bar_spec_entered)
        self.bar.browseRequested.connect(self._on_bar_browse_requested)
        self.bar.fetchRequested.connect(self.fetcher.start)
        self.fetcher.fetched.connect(self._on_fetcher_fetched)
        self.fetcher.failed.connect(self._show_error)
        self.form.configChanged.connect(self._on_form_config_changed)
        self.form.computeRequested.connect(self._on_form_compute_requested)
        self.form.cancelRequested.connect(self._on_form_cancel_requested)
        self.grid.exampleSelected.connect(self._on_grid_example_selected)
        self.play_button.clicked.connect(self._on_play_clicked)
        context.datasetChanged.connect(self._on_context_dataset_changed)

    def _empty_page(self) -> QWidget:
        page = QWidget()
        text = QLabel(EMPTY_TEXT)
        text.setWordWrap(True)
        text.setTextFormat(Qt.TextFormat.RichText)
        buttons = QHBoxLayout()
        fsdd = QPushButton("Download and open FSDD (24 MB)")
        fsdd.clicked.connect(lambda: self.fetcher.start("fsdd"))
        buttons.addWidget(fsdd)
        folder = QPushButton("Open a class folder...")
        folder.clicked.connect(lambda: self._on_bar_browse_requested("folder"))
        csv = QPushButton("Open a CSV manifest...")
        csv.clicked.connect(lambda: self._on_bar_browse_requested("csv"))
        buttons.addWidget(folder)
        buttons.addWidget(csv)
        for title, spec in self.examples_available:
            b = QPushButton(f"Open {title}")
            b.clicked.connect(lambda _=False, s=spec: self.open_spec(s))
            buttons.addWidget(b)
        buttons.addStretch(1)
        lay = QVBoxLayout(page)
        lay.addWidget(text)
        lay.addLayout(buttons)
        lay.addStretch(1)
        return page

    # ----- opening
    def open_spec(self, spec: str) -> None:
        """Open ``spec`` on a worker; on success it becomes the current data set."""
        spec = spec.strip()
        if not spec:
            return
        self.bar.spec.setText(spec)
        try:
            cfg = self.form.config()
        except SnnError as exc:
            return self._show_error(str(exc))
        self._say(f"Opening {spec} ...")
        self.jobs.start(
            "open",
            open_job(spec, cfg),
            on_finished=self._on_open_finished,
            on_failed=self._show_error,
        )

    def _on_open_finished(self, overview) -> None:
        if overview is None:
            return
        self.jobs.stop("features")
        self.overview = overview
        self.feature_set = None
        self.message.setVisible(False)
        s = overview.summary
        self.summary.show_summary(s, overview.sizes)
        self.summary.show_proposal(propose_for_source(overview.source))
        self.chart.show_counts(list(s.class_names), overview.sizes.per_class)
        self._show_examples(overview.examples)
        self.form.progress.setRange(0, 1)
        self.form.progress.setValue(0)
        self.form.result.setText("")
        self.form.setEnabled(s.kind == "audio")
        self.form.setToolTip("" if s.kind == "audio" else "Image data: the pixels are the features")
        self.stack.setCurrentIndex(1)
        self.context.set_dataset(overview.spec)
        self.context.status(f"Data set: {overview.spec} ({s.n_items} items, {s.n_classes} classes)")

    def _show_examples(self, examples) -> None:
        ov = self.overview
        image = ov.summary.kind == "image"
        what = "MFCCs" if self.form.kind.currentData() == "mfcc" else "Log-mel spectrograms"
        what = "Spike rasters (channel x time bin)" if ov.summary.kind == "spikes" else what
        self.grid.show_examples(examples, list(ov.summary.class_names), image, what)
        self._examples_shown = tuple(examples)
        if examples:
            self.grid.select(0)
            self._on_grid_example_selected(0)

    # ----- handlers
    def _on_fetcher_fetched(self, spec: str, _licence: str) -> None:
        self.bar.refresh_fetchable(fetch_entries())
        self.open_spec(spec)

    def _on_bar_spec_entered(self, spec: str) -> None:
        self.open_spec(spec)

    def _on_bar_browse_requested(self, kind: str) -> None:
        start = os.path.dirname(self.bar.spec.text().partition(":")[2]) or os.getcwd()
        if kind == "folder":
            path = QFileDialog.getExistingDirectory(self, "Open a data set folder", start)
        else:
            path, _ = QFileDialog.getOpenFileName(
                self, "Open a CSV manifest", start, "CSV manifests (*.csv *.tsv);;All files (*)"
            )
        if path:
            from engine.data.specs import guess_spec

            try:
                self.open_spec(guess_spec(path))
            except SnnError as exc:
                self._show_error(str(exc))

    def _on_context_dataset_changed(self, spec: str) -> None:
        if spec and (self.overview is None or self.overview.spec != spec):
            self.open_spec(spec)

    def _on_form_config_changed(self) -> None:
        if self.overview is None or self.overview.summary.kind != "audio":
            return
        try:
            cfg = self.form.config()
        except SnnError:
            return
        self.jobs.start(
            "examples",
            examples_job(self.overview, cfg),
            on_finished=lambda ex: self._show_examples(ex) if ex is not None else None,
            on_failed=self._show_error,
        )

    def _on_form_compute_requested(self) -> None:
        if self.overview is None or self.jobs.busy("features"):
            return
        try:
            cfg = self.form.config()
        except SnnError as exc:
            return self._show_error(str(exc))
        self.form.set_running(True)
        self.form.result.setText("Starting...")
        self.jobs.start(
            "features",
            features_job(self.overview.source, cfg),
            on_progress=self.buffer.push,
            on_finished=self._on_features_finished,
            on_failed=self._on_features_failed,
            on_done=self._on_features_done,
            background=True,
        )

    def _on_form_cancel_requested(self) -> None:
        if self.jobs.busy("features"):
            self.jobs.stop("features")
            self.form.result.setText("Stopping...")

    def _on_buffer_events(self, events) -> None:
        ev = events[-1]
        if ev.total:
            self.form.progress.setRange(0, ev.total)
            self.form.progress.setValue(ev.done)
        self.form.result.setText(
            f"{ev.phase}: {ev.done}/{ev.total} clips ({ev.cached} from the cache, "
            f"{ev.failed} failed), {ev.elapsed:.1f} s"
        )

    def _on_features_finished(self, fs) -> None:
        self.buffer.flush()
        if fs is None:
            self.form.result.setText("Stopped. Clips finished so far are cached.")
            return
        self.feature_set = fs
        n, c, f, t = fs.x.shape
        self.form.result.setText(
            f"<b>{n}</b> examples of {c} x {f} x {t}; train {len(fs.splits['train'])}, "
            f"val {len(fs.splits['val'])}, test {len(fs.splits['test'])}. "
            f"{len(fs.skipped)} skipped. {self.form.result.text().split(', ')[-1]}"
        )

    def _on_features_failed(self, text: str) -> None:
        self.form.result.setText(f"<span style='color:#a33'>{text}</span>")

    def _on_features_done(self) -> None:
        self.form.set_running(False)

    def _on_grid_example_selected(self, pos: int) -> None:
        examples = self._examples_shown
        if not 0 <= pos < len(examples) or self.overview is None:
            return
        ex = examples[pos]
        name = self.overview.summary.class_names[ex.label]
        self.selected_label.setText(f"Selected: <b>{ex.name}</b> (class {name})")
        self._update_play_button(ex)

    def _update_play_button(self, ex) -> None:
        if ex.waveform is None:
            self.play_button.setEnabled(False)
            self.play_button.setToolTip("Images have no sound")
            self.play_note.setText("")
            return
        if not self._checked_output:
            self._play_problem = output_device_problem()
            self._checked_output = True
        self.play_button.setEnabled(self._play_problem is None and not self.jobs.busy("play"))
        self.play_button.setToolTip(
            self._play_problem or "Play the selected clip as the network hears it"
        )
        self.play_note.setText(f"cannot play: {self._play_problem}" if self._play_problem else "")

    def _on_play_clicked(self) -> None:
        examples = self._examples_shown
        pos = self.grid.selected
        if self.jobs.busy("play") or not 0 <= pos < len(examples):
            return
        ex = examples[pos]
        if ex.waveform is None:
            return
        self.play_button.setEnabled(False)
        self.jobs.start(
            "play",
            play_job(ex.waveform, ex.sample_rate),
            on_failed=self._show_error,
            on_done=self._on_player_done,
        )

    def _on_player_done(self) -> None:
        examples = self._examples_shown
        if 0 <= self.grid.selected < len(examples):
            self._update_play_button(examples[self.grid.selected])

    # ----- messages
    def _say(self, text: str) -> None:
        self.message.setStyleSheet("color: #444;")
        self.message.setText(text)
        self.message.setVisible(True)

    def _show_error(self, text: str) -> None:
        self.message.setStyleSheet("color: #a33;")
        self.message.setText(text)
        self.message.setVisible(True)
        self.context.status(text)

    # ----- main-window hooks
    def save_state(self, s) -> None:
        s.setValue("spec", self.overview.spec if self.overview else self.bar.spec.text())
        self.form.save_state(s)

    def restore_state(self, s) -> None:
        self.form.restore_state(s)
        spec = read_value(s, "spec", "", str)
        self.bar.spec.setText(spec)
        path = spec.partition(":")[2] or spec
        if spec and os.path.exists(os.path.expanduser(path)):
            self.open_spec(spec)

    def prepare_screenshot(self, options: dict) -> None:
        spec = options.get("data")
        if not spec and self.examples_available:
            spec = self.examples_available[0][1]
        if spec:
            self.open_spec(spec)

    def screenshot_ready(self) -> bool:
        busy = self.jobs.busy("open", "examples")
        return not busy and (self.overview is not None or self.message.isVisible())

    def shutdown(self) -> None:
        self.fetcher.shutdown()
        self.jobs.stop_all()
        self.buffer.stop()
