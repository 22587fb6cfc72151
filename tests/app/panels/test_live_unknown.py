"""The Live tab's "unknown" threshold: a spin box, applied when a result is shown; the empty
tab says how to get going."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from fetchkit import fsdd_zip, tone
from PySide6.QtCore import QSettings

from app.cli import main
from app.context import AppContext
from app.panels.live import LivePanel


def test_threshold_spin_box_and_unknown(qtbot, tmp_path, capsys):
    import zipfile

    with zipfile.ZipFile(fsdd_zip(tmp_path / "srv", digits=3, per_digit=12)) as zf:
        zf.extractall(tmp_path / "fsdd")
    (rec,) = (tmp_path / "fsdd").glob("*/recordings")
    run = tmp_path / "run"
    argv = ["train", "--data", f"fsdd:{rec}", "--model", "cnn", "--epochs", "2", "--quiet"]
    assert main([*argv, "--batch", "8", "--out", str(run)]) == 0
    capsys.readouterr()

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    panel = LivePanel(AppContext(settings))
    qtbot.addWidget(panel)
    try:
        assert "Examples menu" in panel.controls.model_info.text()
        assert "record mode" in panel.controls.model_info.text()
        assert panel.controls.threshold.value() == 0.5
        assert panel.load_checkpoint(str(run / "best.pt"))
        zero = tmp_path / "zero.wav"
        sf.write(zero, np.zeros(4000, np.float32), 8000)
        assert panel.classify_path(str(zero))
        qtbot.waitUntil(lambda: "zero.wav: " in panel.views.heard.text(), timeout=30000)
        assert panel.views.heard.text().startswith("zero.wav: unknown")

        clip = tmp_path / "one.wav"
        sf.write(clip, tone(700, seed=5), 8000)
        panel.controls.threshold.setValue(0.0)  # 0: always name the best class
        assert panel.classify_path(str(clip))
        qtbot.waitUntil(lambda: "one.wav: " in panel.views.heard.text(), timeout=30000)
        best = panel.last_prediction
        assert panel.views.heard.text().startswith(f"one.wav: {best.class_name}")
        panel.controls.threshold.setValue(1.0)
        panel.save_state(settings)
        again = LivePanel(AppContext(settings))
        qtbot.addWidget(again)
        again.restore_state(settings)
        assert again.controls.threshold.value() == 1.0
        again.shutdown()
    finally:
        panel.shutdown()
