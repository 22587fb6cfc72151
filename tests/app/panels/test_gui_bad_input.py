"""Bad files fed to the real tabs: each shows a one-line message naming the file, and the tab
keeps working (the next good input loads). pytest-qt fails a test on any exception raised in a
Qt slot, so "does not crash" is checked too.
"""

from __future__ import annotations

import io
import re
import struct

import numpy as np
import pytest
import soundfile as sf
import torch
from PySide6.QtCore import QSettings

from app.context import AppContext
from engine.models.registry import build_model, model_options
from engine.train.checkpoint import save_checkpoint
from engine.train.config import RunConfig

SR = 8000
PY_ERROR = re.compile(r"^[A-Z]\w*(Error|Exception):")  # a Python exception leaking to the user


def wav_bytes(y, subtype="PCM_16"):
    buf = io.BytesIO()
    sf.write(buf, y, SR, subtype=subtype, format="WAV")
    return buf.getvalue()


TONE = (0.3 * np.sin(np.arange(SR) * 2 * np.pi * 440 / SR)).astype(np.float32)
GOOD = wav_bytes(TONE)
BAD_AUDIO = {
    "empty.wav": b"",
    "half.wav": GOOD[: len(GOOD) // 2],
    "noise.wav": bytes(range(256)) * 20,
    "noise.mp3": bytes(range(255, -1, -1)) * 20,
    "nan.wav": wav_bytes(np.array([0.1, np.nan] * 200, np.float32), subtype="FLOAT"),
    "claims2GB.wav": GOOD[:40] + struct.pack("<I", 0x7FFFFFF0) + GOOD[44:],
}


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make(qtbot, settings):
    made = []

    def build(cls, **context_attrs):
        context = AppContext(settings)
        for k, v in context_attrs.items():
            setattr(context, k, v)
        panel = cls(context)
        qtbot.addWidget(panel)
        panel.resize(1200, 800)
        panel.show()
        made.append(panel)
        return panel

    yield build
    for panel in made:
        panel.shutdown()


def clean_message(text: str, name: str) -> None:
    """One line for a person: names the file and is not a bare Python exception."""
    plain = re.sub(r"<[^>]+>", "", text).strip()
    assert name in plain, (name, plain)
    first = [line for line in plain.splitlines() if name in line][0]
    assert not PY_ERROR.match(first), first


# ----------------------------------------------------------------------------- Encoding tab
def test_encoding_tab_shows_why_a_bad_file_cannot_be_encoded(make, qtbot, tmp_path):
    from app.panels.encoding import EncodingPanel

    panel = make(EncodingPanel)
    cases = [("audio", name, data) for name, data in BAD_AUDIO.items()]
    cases += [
        ("mnist", "t10k-images-idx3-ubyte", b"\x01\x02\x08\x03" + bytes(50)),
        ("mnist", "short-idx3-ubyte", bytes([0, 0, 8, 3]) + struct.pack(">III", 9, 28, 28)),
        ("image", "noise.png", bytes(range(256)) * 4),
        ("image", "empty.png", b""),
    ]
    for kind, name, data in cases:
        path = tmp_path / name
        path.write_bytes(data)
        panel.open_path(kind, str(path))
        qtbot.waitUntil(lambda: panel.message.text() != "Loading...", timeout=30000)
        assert panel.message.isVisible(), name
        clean_message(panel.message.text(), name)
    # the tab still works: a good clip loads and encodes
    good = tmp_path / "good.wav"
    good.write_bytes(GOOD)
    panel.open_path("audio", str(good))
    qtbot.waitUntil(lambda: panel.loaded is not None and panel.loaded.audio, timeout=30000)
    assert not panel.message.isVisible() and panel.view is not None


def test_encoding_tab_on_a_folder_named_like_a_clip(make, qtbot, tmp_path):
    from app.panels.encoding import EncodingPanel

    panel = make(EncodingPanel)
    (tmp_path / "folder.wav").mkdir()
    panel.open_path("audio", str(tmp_path / "folder.wav"))
    qtbot.waitUntil(lambda: panel.message.text() != "Loading...", timeout=30000)
    clean_message(panel.message.text(), "folder.wav")


# ----------------------------------------------------------------------------- Data tab
def test_data_tab_shows_why_a_bad_spec_cannot_be_opened(make, qtbot, tmp_path):
    from app.panels.data import DataPanel

    panel = make(DataPanel)
    (tmp_path / "bad.csv").write_bytes(b'path,label\n"unterminated,a\n')
    (tmp_path / "latin.csv").write_bytes(b"x.wav,caf\xe9\n")
    (tmp_path / "set" / "a").mkdir(parents=True)
    (tmp_path / "set" / "a" / "empty.wav").write_bytes(b"")
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte").write_bytes(b"junk")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(b"junk")
    (tmp_path / "as").mkdir()
    (tmp_path / "as" / "manifest.csv").write_text("a,b\n1,2\n")
    specs = {
        f"csv:{tmp_path / 'bad.csv'}": "bad.csv",
        f"csv:{tmp_path / 'latin.csv'}": "latin.csv",
        f"folder:{tmp_path / 'set'}": "set",
        f"mnist:{tmp_path / 'mnist'}": "mnist",
        f"audioset:{tmp_path / 'as'}": "as",
        f"folder:{tmp_path / 'missing'}": "missing",
        "nonsense:xyz": "nonsense",
        f"csv:{tmp_path / 'set' / 'a' / 'empty.wav'}": "empty.wav",
    }
    for spec, name in specs.items():
        panel.open_spec(spec)
        qtbot.waitUntil(lambda: not panel.message.text().startswith("Opening"), timeout=30000)
        assert panel.message.isVisible(), spec
        clean_message(panel.message.text(), name)
    # the tab still works
    for c in ("a", "b"):
        (tmp_path / "ok" / c).mkdir(parents=True)
        (tmp_path / "ok" / c / "x.wav").write_bytes(GOOD)
    panel.open_spec(f"folder:{tmp_path / 'ok'}")
    qtbot.waitUntil(lambda: panel.overview is not None, timeout=30000)
    assert panel.context.dataset_spec == f"folder:{tmp_path / 'ok'}"


# ----------------------------------------------------------------------------- Live tab
def _checkpoint(path, **change):
    cfg = RunConfig(model="fc_snn", steps=3, model_options={"hidden": 8})
    torch.manual_seed(0)
    opts = model_options(cfg)
    model = build_model(cfg.model, (1, 20, 63), 2, **opts)
    parts = dict(
        config=cfg.to_dict(),
        model={"name": cfg.model, "input_shape": [1, 20, 63], "n_classes": 2, "options": opts},
        class_names=["low", "high"],
        weights=model.state_dict(),
        feature_config={"kind": "mfcc", "sample_rate": SR, "duration": 1.0},
    )
    for key, fn in change.items():
        parts[key] = fn(parts[key])
    save_checkpoint(path, **parts)
    return path


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


BAD_CHECKPOINTS = {
    "noise.pt": lambda p, t: p.write_bytes(bytes(range(256)) * 8),
    "empty.pt": lambda p, t: p.write_bytes(b""),
    "evil.pt": lambda p, t: torch.save(
        {"format": "snn-explorer-checkpoint", "x": _Evil(t / "pwned")}, p
    ),
    "truncated.pt": lambda p, t: p.write_bytes(_checkpoint(t / "t.pt").read_bytes()[:999]),
    "other-model.pt": lambda p, t: _checkpoint(p, weights=lambda w: {k: torch.zeros(3) for k in w}),
    "image-model.pt": lambda p, t: _checkpoint(p, feature_config=lambda f: {"kind": "image"}),
    "no-such-model.pt": lambda p, t: _checkpoint(p, model=lambda m: {**m, "name": "nope"}),
    "model-spec-list.pt": lambda p, t: _checkpoint(p, model=lambda m: [1, 2]),
    "one-class-name.pt": lambda p, t: _checkpoint(p, class_names=lambda c: ["only"]),
    "feature-list.pt": lambda p, t: _checkpoint(p, feature_config=lambda f: [1]),
}


@pytest.mark.parametrize("name", list(BAD_CHECKPOINTS))
def test_live_tab_refuses_a_bad_checkpoint(name, make, tmp_path, no_sound_server):
    from app.panels.live import LivePanel

    panel = make(LivePanel)
    path = tmp_path / name
    BAD_CHECKPOINTS[name](path, tmp_path)
    assert not panel.load_checkpoint(str(path))
    clean_message(panel.controls.model_info.text(), name)
    assert panel.predictor is None and not panel.controls.open_file.isEnabled()
    assert not (tmp_path / "pwned").exists()


def test_live_tab_refuses_bad_clips_and_goes_on(make, qtbot, tmp_path, no_sound_server):
    from app.panels.live import LivePanel

    panel = make(LivePanel)
    assert panel.load_checkpoint(str(_checkpoint(tmp_path / "good.pt")))
    for name, data in BAD_AUDIO.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert panel.classify_path(str(path))
        qtbot.waitUntil(lambda: not panel._busy(), timeout=30000)
        qtbot.wait(100)
        clean_message(panel.controls.file_info.text(), name)
        assert panel.controls.open_file.isEnabled()
    good = tmp_path / "good.wav"
    good.write_bytes(GOOD)
    assert panel.classify_path(str(good))
    qtbot.waitUntil(lambda: not panel._busy(), timeout=30000)
    qtbot.wait(100)
    assert panel.last_prediction is not None
    assert panel.last_prediction.class_name in ("low", "high")
