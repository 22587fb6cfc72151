"""What a path the user hands the window is (a drop, File > Open, Recent), and so which tab takes it.

Qt-free so the rule is tested on its own: a run folder goes to the Training tab, a checkpoint to
the Live tab, a data set (a folder or a CSV manifest) to the Data tab, an audio file to the Live
tab when a model is loaded (else the Encoding tab), an image to the Encoding tab.
"""

from __future__ import annotations

import os

from engine.audio.load import is_audio_name
from engine.train.run_folder import is_run_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".tif", ".tiff")
CHECKPOINT_SUFFIXES = (".pt", ".pth")

# kind -> the tab that takes it (audio: Live when a model is loaded, see MainWindow.open_path)
TAB_OF = {
    "run": "training",
    "checkpoint": "live",
    "data": "data",
    "audio": "live",
    "image": "encoding",
}


def path_kind(path: str | os.PathLike) -> str | None:
    """``"run"``, ``"checkpoint"``, ``"data"``, ``"audio"``, ``"image"``, or None (not usable)."""
    p = os.fspath(path)
    if os.path.isdir(p):
        return "run" if is_run_dir(p) else "data"
    if not os.path.isfile(p):
        return None
    suffix = os.path.splitext(p)[1].lower()
    if suffix in CHECKPOINT_SUFFIXES:
        return "checkpoint"
    if suffix == ".csv":
        return "data"
    if is_audio_name(p):
        return "audio"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return None
