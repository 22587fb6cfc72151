"""Screenshot support for the Training tab: show a given run, or train a tiny real one.

``snn-explorer screenshot --tab training --run DIR`` opens DIR. Without ``--run`` a small real
run is trained in a temporary folder: on a slice of the Free Spoken Digit Dataset when it is at
hand (``--data`` spec, ``$SNN_SHARED_DATA`` or ``../shared/data`` beside the checkout), else on
scikit-learn's bundled digits, which need no download.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from engine.paths import cache_dir, find_shared_data
from engine.train.config import RunConfig
from engine.train.recorded_run import digits_feature_set, fsdd_slice

# the CSNN learns this slice within a few epochs on the membrane loss (94-99 % on the test
# takes, depending on the model defaults); on spike counts it needs many more epochs
DEMO = {"steps": 10, "epochs": 4, "batch": 32, "loss": "ce_mem", "seed": 0}


def shared_fsdd() -> Path | None:
    """The shared FSDD recordings folder when present (the tests' ``../shared/data``)."""
    found = find_shared_data("fsdd", lambda c: (c / "recordings").is_dir())
    return found / "recordings" if found else None


def prepare(panel, options: dict) -> None:
    """Fill ``panel`` for a screenshot: open ``options["run"]`` or start a tiny run."""
    panel._screenshot = True
    run = options.get("run")
    if run:
        panel.runs.set_folder(str(Path(run).resolve().parent))
        panel.open_run(run)
        return
    tmp = tempfile.TemporaryDirectory(prefix="snn-explorer-demo-")
    panel._demo_tmp = tmp  # removed with the panel (or at exit)
    panel.runs.folder.setText(os.path.join(tmp.name, "runs"))
    data = None
    spec = options.get("data") or ""
    if not spec and shared_fsdd() is not None:
        # a lasting folder, so the features come from the cache the next time
        spec = fsdd_slice(shared_fsdd(), cache_dir("demo") / "fsdd-2x10x30", 2, range(30))
    if spec:
        cfg = RunConfig(data=spec, model="csnn", **DEMO)
    else:
        data = digits_feature_set(16)
        cfg = RunConfig(model="csnn", **DEMO)
    panel.setup.set_config(cfg)
    run_dir = os.path.join(tmp.name, "runs", "demo-csnn")
    panel.start(cfg, run_dir, data=data)


def ready(panel) -> bool:
    """True once the run to show is loaded (given run) or finished (tiny run)."""
    h = panel.history
    if panel.is_running():
        return False
    if panel.message.isVisible():
        return True  # an error is what there is to show
    return bool(h.run_dir) and (h.finished is not None or bool(h.epochs))
