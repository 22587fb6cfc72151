"""The Encoding tab: an image or an MFCC becomes spikes (the report's section 2.1, Figs. 2-6).

Pick an input (built-in digits, an MNIST IDX file, an image file, an audio file or a clip of the
current data set) and an encoder; see the input, the spikes at each step (animated), their
average beside the original, the raster, and the spike count and sparsity.
"""

from __future__ import annotations

import os
import time
from collections import deque

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.panels.encoding_controls import EncodingControls
from app.panels.encoding_sources import ImageCache, LoadedInput, audio_job, read_image_file
from app.panels.encoding_views import EncodingViews
from app.settings import read_value
from app.widgets import scroll_column
from app.workers import PanelJobs
from engine.data.samples import default_mnist_dir, default_mnist_images
from engine.errors import SnnError

FILE_FILTERS = {
    "mnist": "MNIST IDX images (*idx3-ubyte *idx3-ubyte.gz);;All files (*)",
    "image": "Images (*.png *.jpg *.jpeg *.bmp *.gif *.pgm *.tif *.tiff);;All files (*)",
    "audio": "Audio (*.wav *.flac *.ogg *.mp3 *.m4a *.opus *.aiff);;All files (*)",
}


class EncodingPanel(QWidget):
    def __init__(self, context, parent=None):
        super().__init__(parent)
        self.context = context
        self.controls = EncodingControls()
        scroll = scroll_column(self.controls, width=380)
        self.views = EncodingViews()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #a33;")
        self.message.setVisible(False)
        right = QVBoxLayout()
        right.addWidget(self.message)
        right.addWidget(self.views, 1)
        lay = QHBoxLayout(self)
        lay.addWidget(scroll)
        lay.addLayout(right, 1)

        self.cache = ImageCache()
        mnist = default_mnist_images()
        self.paths = {"mnist": str(mnist) if mnist else "", "image": "", "audio": ""}
        self.loaded: LoadedInput | None = None
        self.view = None
        self.encode_ms: deque[float] = deque(maxlen=200)
        self._dataset = (None, None)  # (spec, opened DataSource)
        self.jobs = PanelJobs(self)
        if mnist is None:
            self.controls.source.setCurrentIndex(self.controls.source.findData("digits"))
        else:
            self.controls.source.setCurrentIndex(self.controls.source.findData("mnist"))

        self.controls.sourceChanged.connect(self._on_controls_source_changed)
        self.controls.encoderChanged.connect(self._on_controls_encoder_changed)
        self.controls.openRequested.connect(self._on_controls_open_requested)
        context.datasetChanged.connect(self._on_context_dataset_changed)
        self.reload()

    # ----- loading
    def reload(self) -> None:
        """Load the current source's current item (audio on a worker thread), then encode."""
        self.jobs.drop("load")  # this newer request wins over a load still running
        kind = self.controls.source_kind()
        index = self.controls.index.value()
        invert = self.controls.invert.isChecked()
        path = self.paths.get(kind, "")
        self.controls.path.setText(os.path.basename(path.rstrip("/")) if path else "(none)")
        try:
            if kind == "digits":
                self.controls.path.setText("bundled with scikit-learn")
                self._show_loaded(self.cache.digits(index, invert))
            elif kind == "mnist":
                if not path:
                    return self._hint(
                        "No MNIST file found: press Open... and pick an *-idx3-ubyte file."
                    )
                self._show_loaded(self.cache.mnist(path, index, invert))
            elif kind == "image":
                if not path:
                    return self._hint("Press Open... to pick an image file.")
                self._show_loaded(read_image_file(path, invert))
            elif kind == "audio":
                if not path:
                    return self._hint("Press Open... to pick an audio file (WAV, FLAC, MP3...).")
                self._start(audio_job(path=path))
            else:
                spec = self.context.dataset_spec
                if not spec:
                    return self._hint("No data set is open: open one in the Data tab first.")
                self.controls.path.setText(spec)
                source = self._dataset[1] if self._dataset[0] == spec else None
                self._start(audio_job(spec=spec, index=index, source=source))
        except SnnError as exc:
            self._hint(str(exc))

    def _start(self, job) -> None:
        self.message.setText("Loading...")
        self.message.setVisible(True)
        self.jobs.start("load", job, on_finished=self._on_job_finished, on_failed=self._hint)

    def _on_job_finished(self, result) -> None:
        source, loaded = result if result else (None, None)
        if source is not None:
            self._dataset = (source.spec, source)
        if loaded is not None:
            self._show_loaded(loaded)

    def _hint(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(True)
        self.context.status(text)

    def _show_loaded(self, loaded: LoadedInput) -> None:
        self.message.setVisible(False)
        self.loaded = loaded
        self.controls.set_items(loaded.count, loaded.item)
        self.views.show_waveform(loaded.waveform, loaded.sample_rate)
        self.reencode()

    # ----- encoding
    def reencode(self) -> None:
        if self.loaded is None:
            return
        from engine.neuro.encoders import encode_view

        start = time.perf_counter()
        c = self.controls
        try:
            self.view = encode_view(
                self.loaded.matrix, c.encoder_name(), c.steps.value(), **c.encoder_params()
            )
        except SnnError as exc:
            return self._hint(str(exc))
        self.message.setVisible(False)
        self.views.show_view(self.view, self.loaded.title, self.loaded.audio)
        st = self.view.stats
        h, w = self.view.input.shape
        off = f" ({int(st['on'])} on, {int(st['off'])} off)" if st["off"] else ""
        c.numbers.setText(
            f"<b>{int(st['spikes'])}</b> spikes{off}<br>"
            f"sparsity <b>{100 * st['sparsity']:.1f} %</b> of entries are 0<br>"
            f"{h}x{w} = {h * w} inputs x {self.view.steps} steps<br>"
            f"mean rate {st['rate']:.3f} spikes per input per step"
        )
        self.encode_ms.append((time.perf_counter() - start) * 1000.0)

    # ----- handlers
    def _on_controls_source_changed(self) -> None:
        self.views.stop()
        self.reload()

    def _on_controls_encoder_changed(self) -> None:
        self.reencode()

    def _on_controls_open_requested(self) -> None:
        kind = self.controls.source_kind()
        if kind not in FILE_FILTERS:
            return
        start = self.paths.get(kind) or str(default_mnist_dir() or os.getcwd())
        path, _ = QFileDialog.getOpenFileName(self, "Open input", start, FILE_FILTERS[kind])
        if path:
            self.open_path(kind, path)

    def _on_context_dataset_changed(self, _spec: str) -> None:
        if self.controls.source_kind() == "dataset":
            self.reload()

    def open_path(self, kind: str, path: str) -> None:
        """Use ``path`` as the file of source ``kind`` ("mnist", "image", "audio") and show it."""
        self.paths[kind] = path
        index = self.controls.source.findData(kind)
        if self.controls.source.currentIndex() != index:
            self.controls.source.setCurrentIndex(index)  # reloads
        else:
            self.reload()

    # ----- main-window hooks
    def save_state(self, s) -> None:
        self.controls.save_state(s)
        for kind, path in self.paths.items():
            s.setValue(f"path/{kind}", path)

    def restore_state(self, s) -> None:
        for kind in self.paths:
            path = read_value(s, f"path/{kind}", "", str)
            if path and os.path.exists(path):
                self.paths[kind] = path
        self.controls.restore_state(s)
        self.reload()

    def prepare_screenshot(self, options: dict) -> None:
        if options.get("data"):
            self.context.set_dataset(options["data"])
            self.controls.source.setCurrentIndex(self.controls.source.findData("dataset"))

    def screenshot_ready(self) -> bool:
        return self.view is not None and not self.jobs.busy()

    def shutdown(self) -> None:
        self.views.stop()
        self.jobs.stop_all()
