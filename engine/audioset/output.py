"""Write the AudioSet builder's output folder: ``manifest.csv`` and ``selection.json``.

The folder's layout, its file names and its reading as a data set belong to
:mod:`engine.data.audioset_folder` (re-exported here for the builder's callers).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from engine.atomic import write_atomic
from engine.data.audioset_folder import (  # noqa: F401 - re-exported
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    SELECTION_NAME,
    ManifestRow,
    manifest_path,
    open_output,
    read_manifest,
)

if TYPE_CHECKING:
    from engine.audioset.selection import Selection


def _official_split(source: str) -> str:
    return "test" if source.startswith("eval") else "train" if "train" in source else ""


def write_manifest(sel: Selection, out_dir: str | os.PathLike) -> Path:
    """Write ``manifest.csv`` and ``selection.json`` into ``out_dir`` (atomically); the CSV path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = {_official_split(c.source) for c in sel.clips}
    use_split = {"train", "test"} <= splits and "" not in splits
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for clip in sel.clips:
        writer.writerow(
            [
                sel.file_for(clip),
                sel.class_names[clip.class_index],
                _official_split(clip.source) if use_split else "",
                clip.ytid,
                clip.ytid,
                f"{clip.start:.3f}",
                f"{clip.end:.3f}",
                ",".join(clip.labels),
                clip.source,
            ]
        )
    path = out / MANIFEST_NAME
    write_atomic(path, buf.getvalue())
    meta = {
        "config": sel.config.to_dict(),
        "class_names": list(sel.class_names),
        "class_ids": list(sel.class_ids),
        "steps": [asdict(s) for s in sel.steps],
        "sources": list(sel.sources),
        "rows": sel.rows,
        "overlap_removed": sel.overlap_removed,
    }
    write_atomic(out / SELECTION_NAME, json.dumps(meta, indent=1))
    return path
