"""The AudioSet builder tab: pick classes in the ontology, preview the counts, download the clips.

Left: the ontology as a searchable tree with clip counts for the loaded CSVs. Middle: target
classes, excluded labels and filters. Right: per-class counts after each filter (table and bars),
co-occurring labels, and the download (progress, failures grouped by reason, cancel). Every long
step (reading the CSVs, selecting, downloading) is an engine job on a worker thread.
"""

from __future__ import annotations

import html
import json
import os
import re

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.panels.builder_download import DownloadBox
from app.panels.builder_results import CooccurrenceView, CountsView
from app.panels.builder_setup import SelectionForm
from app.panels.builder_tree import OntologyTree
from app.settings import read_value
from app.widgets import scroll_column
from app.workers import EventBuffer, PanelJobs
from engine import audioset
from engine.audioset.download import download_clips
from engine.errors import SnnError

EMPTY_HINT = (
    "Press <b>Load files...</b> and pick AudioSet's <i>ontology.json</i> with one or more segment "
    "CSVs (<i>eval_segments.csv</i>, <i>balanced_train_segments.csv</i>...). Offline? Download "
    f"them from {audioset.OFFICIAL_FILES['ontology.json']} and "
    f"{audioset.OFFICIAL_FILES['eval_segments.csv'].rsplit('/', 1)[0]}/ first."
)


class BuilderPanel(QWidget):
    def __init__(self, context, parent=None):
        super().__init__(parent)
        self.context = context
        self.loaded: audioset.LoadedMetadata | None = None
        self.selection: audioset.Selection | None = None
        self.download_result = None
        # "metadata" (loading files, then counting a selection: a newer request wins) and
        # "download"
        self.jobs = PanelJobs(self)

        self.message = QLabel(EMPTY_HINT)
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.tree = OntologyTree()
        self.form = SelectionForm()
        scroll = scroll_column(self.form, min_width=270)
        self.counts = CountsView()
        self.cooc = CooccurrenceView()
        self.download = DownloadBox()
        self.results = QTabWidget()
        self.results.addTab(self.counts, "Counts per class")
        self.results.addTab(self.cooc, "Co-occurring labels")
        self.results.addTab(self.download, "Download")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tree)
        split.addWidget(scroll)
        split.addWidget(self.results)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 0)
        split.setStretchFactor(2, 4)
        split.setSizes([400, 290, 590])
        lay = QVBoxLayout(self)
        lay.addWidget(self.message)
        lay.addWidget(split, 1)
        self.buffer = EventBuffer(self._on_buffer_events, parent=self)

        self.form.loadRequested.connect(self._on_form_load_requested)
        self.form.previewRequested.connect(self._on_form_preview_requested)
        self.tree.classRequested.connect(self._on_tree_class_requested)
        self.tree.excludeRequested.connect(self._on_tree_exclude_requested)
        self.download.browseRequested.connect(self._on_download_browse_requested)
        self.download.saveRequested.connect(self._on_download_save_requested)
        self.download.downloadRequested.connect(self._on_download_download_requested)
        self.download.cancelRequested.connect(self._on_download_cancel_requested)
        self.download.useRequested.connect(self._on_download_use_requested)
        self.download.out_dir.textChanged.connect(lambda _t: self._update_buttons())

    # ----- jobs
    def _start(self, name: str, factory, on_finished, on_progress=None):
        return self.jobs.start(
            name,
            factory,
            on_progress=on_progress,
            on_finished=on_finished,
            on_failed=self._on_job_failed,
            on_done=self._update_buttons if name == "download" else None,
        )

    def _on_job_failed(self, text: str) -> None:
        self._say(text, error=True)

    def _say(self, text: str, error: bool = False) -> None:
        if error:  # engine messages are plain text (they may hold "<...>")
            self.message.setText(f"<span style='color:#a33'>{html.escape(text)}</span>")
        else:
            self.message.setText(text)
        self.context.status(re.sub(r"<[^>]+>", "", text))  # the status bar shows plain text

    def is_busy(self) -> bool:
        return self.jobs.busy()

    # ----- loading
    def load_files(self, ontology: str, segments: list[str], preview: bool = True) -> None:
        """Read ``ontology`` and ``segments`` on a worker; fill the tree; then preview."""
        self._say(f"Loading {os.path.basename(ontology)} and {len(segments)} segment file(s)...")

        def finished(result):
            if result is not None:
                self._on_loaded(result, preview)

        self._start(
            "metadata",
            lambda stop: audioset.load_job(ontology, list(segments), stop),
            finished,
            on_progress=lambda ev: self.context.status(ev.stage),
        )

    def _on_loaded(self, loaded: audioset.LoadedMetadata, preview: bool) -> None:
        self.loaded = loaded
        self.tree.set_ontology(loaded.ontology, loaded.node_counts)
        names = ", ".join(os.path.basename(p) for p in loaded.segment_paths)
        t = loaded.table
        bad = f", {t.malformed_count:,} malformed rows skipped" if t.malformed_count else ""
        self.form.files.setText(
            f"{os.path.basename(loaded.ontology_path)}: {len(loaded.ontology)} classes<br>"
            f"{names}: {len(t):,} segments{bad}"
        )
        self.form.preview.setEnabled(True)
        problems = "; ".join(loaded.ontology.problems[:2])
        self._say(
            f"Loaded {len(t):,} segments. Pick target classes in the tree (double-click or "
            "<b>Use as class</b>), then <b>Preview counts</b>."
            + (f" Note: {problems}" if problems else "")
        )
        if preview:
            self.preview()

    # ----- preview
    def preview(self) -> None:
        if self.loaded is None:
            return
        try:
            cfg = self.form.config(self.download.format.currentText())
        except SnnError as exc:
            return self._say(str(exc), error=True)
        loaded = self.loaded

        def finished(sel):
            if sel is not None:
                self._on_selected(sel)

        self._start(
            "metadata",
            lambda stop: audioset.select_job(loaded.ontology, loaded.table, cfg, stop),
            finished,
        )

    def _on_selected(self, sel: audioset.Selection) -> None:
        self.selection = sel
        self.counts.show_selection(sel)
        self.cooc.show_selection(sel)
        per = ", ".join(f"{n} {c:,}" for n, c in zip(sel.class_names, sel.counts))
        self._say(f"Selected <b>{len(sel.clips):,}</b> clips ({per}).")
        self._update_buttons()

    # ----- download
    def _out_dir(self) -> str:
        return os.path.expanduser(self.download.out_dir.text().strip())

    def _update_buttons(self) -> None:
        running = self.jobs.busy("download")
        ready = self.selection is not None and bool(self._out_dir())
        self.download.set_running(running, ready)
        out = self._out_dir()
        self.download.use.setEnabled(
            not running and bool(out) and os.path.isfile(os.path.join(out, "manifest.csv"))
        )

    def write_manifest(self) -> str | None:
        if self.selection is None or not self._out_dir():
            return None
        try:
            return str(audioset.write_manifest(self.selection, self._out_dir()))
        except OSError as exc:
            self._say(f"{self._out_dir()}: cannot write the manifest ({exc.strerror})", True)
            return None

    def start_download(self) -> None:
        """Write the manifest of the current selection and download its clips."""
        if self.jobs.busy("download"):
            return
        try:
            cfg = self.download.config()
        except SnnError as exc:
            return self._say(str(exc), error=True)
        if self.write_manifest() is None:
            return
        out = self._out_dir()
        self.download_result = None
        self._start(
            "download",
            lambda stop: download_clips(out, cfg, stop=stop),
            self._on_download_finished,
            on_progress=self.buffer.push,
        )
        self.results.setCurrentWidget(self.download)
        self._say(f"Downloading into {out}...")
        self._update_buttons()

    def _on_download_finished(self, result) -> None:
        self.buffer.flush()
        self.download_result = result
        self.download.show_result(result)
        if result is not None:
            self._say(
                f"{result.done:,} of {result.total:,} clips in {self._out_dir()}"
                + (" (cancelled)" if result.cancelled else "")
            )

    def _on_buffer_events(self, events: list) -> None:
        self.download.show_events(events)

    # ----- handlers
    def _on_form_load_requested(self) -> None:
        start = os.path.dirname(self.loaded.ontology_path) if self.loaded else os.getcwd()
        paths, _ = QFileDialog.getOpenFileNames(
            self,
            "Pick ontology.json and segment CSVs",
            start,
            "AudioSet metadata (*.json *.csv);;All files (*)",
        )
        if not paths:
            return
        jsons = [p for p in paths if p.lower().endswith(".json")]
        csvs = [p for p in paths if not p.lower().endswith(".json")]
        ontology = jsons[0] if jsons else (self.loaded.ontology_path if self.loaded else "ontology")
        segments = csvs or (list(self.loaded.segment_paths) if self.loaded else [])
        if not segments:
            return self._say("Pick at least one segment CSV along with ontology.json.", True)
        self.load_files(ontology, segments)

    def _on_form_preview_requested(self) -> None:
        self.preview()

    def _on_tree_class_requested(self, nid: str) -> None:
        if self.loaded:
            self.form.add_class(self.loaded.ontology, nid)

    def _on_tree_exclude_requested(self, nid: str) -> None:
        if self.loaded:
            self.form.add_excluded(self.loaded.ontology, nid)

    def _on_download_browse_requested(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Output folder", self._out_dir() or os.getcwd()
        )
        if path:
            self.download.out_dir.setText(path)

    def _on_download_save_requested(self) -> None:
        path = self.write_manifest()
        if path:
            self._say(f"Wrote {path} ({len(self.selection.clips):,} clips).")
            self._update_buttons()

    def _on_download_download_requested(self) -> None:
        self.start_download()

    def _on_download_cancel_requested(self) -> None:
        if self.jobs.busy("download"):
            self.jobs.stop("download")
            self._say("Cancelling...")

    def _on_download_use_requested(self) -> None:
        self.context.set_dataset(f"audioset:{self._out_dir()}")
        self._say(f"audioset:{self._out_dir()} is now the current data set.")

    # ----- main-window hooks
    def save_state(self, s) -> None:
        if self.loaded is not None:
            s.setValue("ontology", self.loaded.ontology_path)
            s.setValue("segments", json.dumps(list(self.loaded.segment_paths)))
        try:
            s.setValue("selection", json.dumps(self.form.config().to_dict()))
        except SnnError:
            pass  # an incomplete form (one class) is not worth keeping
        s.setValue("out_dir", self.download.out_dir.text())
        s.setValue("format", self.download.format.currentText())
        s.setValue("sample_rate", self.download.sample_rate.value())
        s.setValue("jobs", self.download.jobs.value())
        s.setValue("url_template", self.download.url_template.text())

    def restore_state(self, s) -> None:
        try:
            cfg = audioset.SelectionConfig.from_dict(json.loads(read_value(s, "selection", "{}")))
            self.form.set_config(cfg)
        except (ValueError, TypeError, SnnError):
            pass
        self.download.out_dir.setText(read_value(s, "out_dir", ""))
        self.download.format.setCurrentText(read_value(s, "format", "wav"))
        self.download.sample_rate.setValue(read_value(s, "sample_rate", 16000, int))
        self.download.jobs.setValue(read_value(s, "jobs", 4, int))
        self.download.url_template.setText(read_value(s, "url_template", ""))
        ontology = read_value(s, "ontology", "")
        try:
            segments = [str(p) for p in json.loads(read_value(s, "segments", "[]"))]
        except ValueError:
            segments = []
        if ontology and segments and all(os.path.isfile(p) for p in [ontology, *segments]):
            self.load_files(ontology, segments)

    def prepare_screenshot(self, options: dict) -> None:
        folder = audioset.default_audioset_dir()
        if folder is None:
            return  # the empty state with its instructions is what a new user sees
        segments = [
            str(folder / n)
            for n in ("eval_segments.csv", "balanced_train_segments.csv")
            if (folder / n).is_file()
        ]
        self.load_files(str(folder / "ontology.json"), segments)

    def screenshot_ready(self) -> bool:
        return not self.is_busy()

    def shutdown(self) -> None:
        self.jobs.stop_all()
        self.buffer.stop()
