"""An AudioSet builder's output folder read as a data set (the ``audioset:DIR`` spec).

Layout of ``DIR``::

    manifest.csv          file,label,split,group,ytid,start_seconds,end_seconds,labels,source
    selection.json        the SelectionConfig and the per-class counts after each step
    download_state.json   per-clip state (written by engine.audioset.download)
    <class>/<ytid>_<start ms>.wav

This module owns those names and the clip layout; the builder (``engine.audioset``) writes the
folder, the data layer reads it. The first four manifest columns make it a ``csv:`` data set as
well; :func:`open_output` reads only the clips that are downloaded, classes in the selection's
order.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from engine.audio.load import audio_info
from engine.data.source import AudioSource, Item
from engine.errors import DataError

YTID_RE = re.compile(r"\A[A-Za-z0-9_-]{11}\Z")
FORMATS = ("wav", "flac")
MANIFEST_NAME = "manifest.csv"
SELECTION_NAME = "selection.json"
# the first four columns make the manifest a ``csv:`` data set too (path,label,split,group)
MANIFEST_COLUMNS = (
    "file",
    "label",
    "split",
    "group",
    "ytid",
    "start_seconds",
    "end_seconds",
    "labels",
    "source",
)
STATE_NAME = "download_state.json"


def is_valid_ytid(ytid: str) -> bool:
    """True for an 11-character YouTube video ID (letters, digits, ``-`` and ``_``)."""
    return isinstance(ytid, str) and YTID_RE.match(ytid) is not None


def clip_key(ytid: str, start: float) -> str:
    """The file stem of a clip: its video ID and start in milliseconds (``abc_30000``)."""
    return f"{ytid}_{int(round(start * 1000))}"


def folder_name(class_name: str) -> str:
    """A class name made safe as one folder name (no separators, no leading dots)."""
    safe = "".join("_" if (c in '/\\:*?"<>|' or ord(c) < 32) else c for c in class_name)
    return safe.strip(" .") or "class"


@dataclass(frozen=True)
class ManifestRow:
    """One clip to download: where from, which class, and its file relative to the folder.

    ``split`` is ``"test"`` for the official eval set and ``"train"`` for the train sets when
    the selection holds both, else empty (the data set's splits are then carved by seed).
    """

    ytid: str
    start: float
    end: float
    class_name: str
    labels: tuple[str, ...]
    source: str
    file: str
    split: str = ""

    @property
    def key(self) -> str:
        return clip_key(self.ytid, self.start)


def read_state(out_dir: str | os.PathLike) -> dict[str, dict]:
    """Per-clip state of an output folder (empty when none was written or it is unreadable)."""
    return read_state_file(Path(out_dir))[1]


def read_state_file(out_dir: Path) -> tuple[int | None, dict[str, dict]]:
    """The sample rate the clips were written at (or None) and the per-clip state."""
    try:
        data = json.loads((out_dir / STATE_NAME).read_text(encoding="utf-8"))
        clips = data.get("clips", {})
        rate = data.get("sample_rate")
        return (
            int(rate) if isinstance(rate, int) else None,
            {str(k): dict(v) for k, v in clips.items() if isinstance(v, dict)},
        )
    except (OSError, ValueError, AttributeError):
        return None, {}


def manifest_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p / MANIFEST_NAME if p.is_dir() else p


def _safe_id(ytid: str) -> str:
    # an invalid ID still gets a file name inside the folder; the download refuses it anyway
    return ytid if is_valid_ytid(ytid) else "".join(c if c.isalnum() else "_" for c in ytid)[:32]


def read_manifest(path: str | os.PathLike) -> tuple[list[ManifestRow], list[str]]:
    """Rows of a manifest (a folder or its ``manifest.csv``) and the class names in order.

    The file of each row is rebuilt from its class and key (never taken from the CSV), so a
    hand-edited manifest cannot point outside the folder. DataError on a missing file or column.
    """
    p = manifest_path(path)
    rows: list[ManifestRow] = []
    classes: list[str] = []
    try:
        with open(p, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            needed = ("file", "label", "ytid", "start_seconds", "end_seconds")
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{p}: not an AudioSet manifest (no {missing[0]!r} column)")
            for line in reader:
                where = f"{p} line {reader.line_num}"
                try:
                    start, end = float(line["start_seconds"]), float(line["end_seconds"])
                except (TypeError, ValueError):
                    raise DataError(f"{where}: start/end are not numbers") from None
                name = (line["label"] or "").strip()
                if not name:
                    raise DataError(f"{where}: empty label")
                ext = os.path.splitext(line.get("file") or "")[1].lstrip(".").lower()
                ytid = (line["ytid"] or "").strip()
                split = (line.get("split") or "").strip()
                rows.append(
                    ManifestRow(
                        ytid=ytid,
                        start=start,
                        end=end,
                        class_name=name,
                        labels=tuple(x for x in (line.get("labels") or "").split(",") if x),
                        source=line.get("source") or "",
                        file=f"{folder_name(name)}/{clip_key(_safe_id(ytid), start)}."
                        f"{ext if ext in FORMATS else 'wav'}",
                        split=split if split in ("train", "test") else "",
                    )
                )
                if name not in classes:
                    classes.append(name)
    except OSError as exc:
        raise DataError(f"{p}: cannot read ({exc.strerror or exc}); run a preview first") from None
    meta = p.with_name(SELECTION_NAME)
    if meta.is_file():
        try:
            ordered = json.loads(meta.read_text(encoding="utf-8")).get("class_names") or []
            classes = [c for c in ordered if c in classes] + [
                c for c in classes if c not in ordered
            ]
        except (OSError, ValueError, AttributeError):
            pass  # the order is a nicety; the manifest itself is what counts
    return rows, classes


def open_output(path: str | os.PathLike):
    """The downloaded clips of an output folder as an ``engine.data.specs.AudioSource``.

    This is what ``open_source("audioset:DIR")`` returns: classes in the selection's order (those
    with at least one clip), one item per clip whose file exists (group = video ID, split = the
    official one when clips of both the eval and a train CSV are there); clips not downloaded are
    listed in ``skipped`` with the reason.
    """
    root = Path(path)
    if root.name == MANIFEST_NAME:
        root = root.parent
    rows, classes = read_manifest(root)
    spec = f"audioset:{root}"
    state = read_state(root)
    found = []
    skipped = []
    for row in rows:
        full = root / row.file
        if not full.is_file():
            entry = state.get(row.key, {})
            why = entry.get("reason") if entry.get("state") == "failed" else ""
            skipped.append((str(full), f"download failed: {why}" if why else "not downloaded"))
            continue
        try:
            found.append((row, audio_info(full)))
        except DataError as exc:
            skipped.append((str(full), str(exc).split(": ", 1)[-1]))
    if not found:
        raise DataError(
            f"{spec}: none of the {len(rows)} clips is downloaded yet "
            f"(run: snn-explorer dataset audioset --out {root} --download)"
        )
    # a class with no clip yet is left out (as an empty folder would be), and the official
    # split only stands when both of its sides are there
    present = {row.class_name for row, _ in found}
    classes = [c for c in classes if c in present]
    index = {name: i for i, name in enumerate(classes)}
    use_split = {row.split for row, _ in found} == {"train", "test"}
    items = [
        Item(
            str(root / row.file),
            index[row.class_name],
            row.split if use_split else None,
            row.ytid,
            i,
        )
        for i, (row, _) in enumerate(found)
    ]
    return AudioSource(spec, classes, items, [info for _, info in found], skipped)
