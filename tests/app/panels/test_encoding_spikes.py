"""The Encoding tab shows an SHD/SSC clip's input raster (the data already are spikes)."""

from __future__ import annotations

import numpy as np
from fetchkit import write_shd
from PySide6.QtCore import QSettings

from app.context import AppContext
from app.panels.encoding import EncodingPanel


def test_shd_clip_raster(qtbot, tmp_path):
    write_shd(tmp_path / "shd_train.h5", n=8, seed=3)
    panel = EncodingPanel(AppContext(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat)))
    qtbot.addWidget(panel)
    try:
        box = panel.controls.source
        box.setCurrentIndex(box.findData("dataset"))
        panel.context.set_dataset(f"shd:{tmp_path}?bins=40&dt=0.0125")
        qtbot.waitUntil(
            lambda: panel.loaded is not None and "spikes" in panel.loaded.title, timeout=30000
        )
        loaded = panel.loaded
        assert loaded.count == 8 and not loaded.audio
        assert loaded.title.startswith("Input spikes of #0: 700 channels x 40 bins of 12.5 ms")
        assert loaded.matrix.shape == (700, 40) and set(np.unique(loaded.matrix)) == {0.0, 1.0}
        assert loaded.matrix[:50].sum() > 0 and loaded.matrix[50:].sum() == 0  # class 0's band
        assert panel.controls.item_label.text() == "class word0 (#0)"
        assert panel.view is not None and panel.view.input.shape == (700, 40)
    finally:
        panel.shutdown()
