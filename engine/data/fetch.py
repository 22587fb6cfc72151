"""Download a catalog data set: resumable HTTP, checksum, extraction, atomic arrival.

:func:`fetch` is a Qt-free generator: it yields :class:`FetchProgress` events and returns the
:class:`FetchedSet` (``None`` when stopped). Steps, per archive of the catalog row:

1. download to ``DIR/.downloads/NAME.part`` with ``urllib``; a ``.part`` left by an earlier run
   (stopped, killed, connection lost) is resumed with an HTTP ``Range`` request;
2. check the size against ``Content-Length`` and the checksum (when the catalog pins one; else a
   warning says the file was verified by size only); a mismatch removes the file and extracts
   nothing;
3. extract (zip, tar.gz, a single .gz, or keep as is) into a temporary folder beside the target,
   which replaces ``DIR/NAME`` with one rename once everything is there.

``DIR/fetched.json`` (written atomically) records what has arrived: folder, spec, licence, files
and how each was verified.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import http.client
import io
import json
import os
import shutil
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

from engine.atomic import write_atomic
from engine.data.catalog import Archive, CatalogEntry, archive_url, entry
from engine.errors import DataError, DownloadError
from engine.paths import data_dir

__all__ = ["RECORD_NAME", "FetchProgress", "FetchedSet", "fetch", "fetched", "fetched_spec"]

RECORD_NAME = "fetched.json"
CHUNK = 256 * 1024
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class FetchProgress:
    """``phase`` is download / verify / extract / done; bytes of the current file."""

    name: str
    phase: str
    file: str
    done: int = 0
    total: int = 0
    resumed_from: int = 0
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class FetchedSet:
    """A data set that is now on disk."""

    name: str
    folder: str
    spec: str
    licence: str
    warnings: tuple[str, ...] = field(default_factory=tuple)


# ----------------------------------------------------------------------------- the generator
def fetch(
    name: str | CatalogEntry,
    folder: str | os.PathLike | None = None,
    *,
    base_url: str | None = None,
    stop: threading.Event | None = None,
) -> Generator[FetchProgress, None, FetchedSet | None]:
    """Fetch the catalog set ``name`` (or a catalog row) into ``folder`` (default
    ``engine.paths.data_dir()``); its files land in ``folder/NAME``.

    Raises
    ------
    DataError
        Unknown set name; an archive that cannot be extracted.
    DownloadError
        HTTP error, a connection that drops (the ``.part`` stays: run again to resume), a size
        or checksum mismatch (the file is removed).
    """
    row = name if isinstance(name, CatalogEntry) else entry(name)
    stop = stop or threading.Event()
    root = Path(folder) if folder is not None else data_dir()
    root.mkdir(parents=True, exist_ok=True)
    downloads = root / ".downloads"
    downloads.mkdir(exist_ok=True)
    warnings: list[str] = []
    got: list[tuple[Archive, Path, str]] = []
    for arc in row.archives:
        path = downloads / arc.name
        sized = True  # a file downloaded by an earlier run was size-checked then
        if not path.is_file():
            sized = yield from _download(row.name, arc, archive_url(arc, base_url), path, stop)
            if sized is None:
                return None
        yield FetchProgress(row.name, "verify", arc.name, message=f"checking {arc.name}")
        how = _verify(arc, path)
        if how == "size":
            warnings.append(
                f"{arc.name}: no published checksum pinned for this file; "
                + (
                    "verified by size only"
                    if sized
                    else "no size sent either: checked by unpacking"
                )
            )
        got.append((arc, path, how))
        if stop.is_set():
            return None
    target = root / row.name
    tmp = root / f".{row.name}.extracting-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for arc, path, _how in got:
            yield FetchProgress(row.name, "extract", arc.name, message=f"unpacking {arc.name}")
            _unpack(arc, path, tmp)
            if stop.is_set():
                return None
        _flatten(tmp)
        if row.manifest:
            _write_manifest(row.manifest, tmp)
        _swap_in(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for _arc, path, _how in got:
        path.unlink(missing_ok=True)
    result = FetchedSet(row.name, str(target), row.spec_for(target), row.licence, tuple(warnings))
    _record(root, row, result, got)
    yield FetchProgress(row.name, "done", "", message=f"{row.name} is in {target}")
    return result


def fetched(folder: str | os.PathLike | None = None) -> dict[str, dict]:
    """What ``fetched.json`` in ``folder`` (default the data folder) says has arrived."""
    root = Path(folder) if folder is not None else data_dir()
    path = root / RECORD_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable record of fetched sets ({exc})") from None
    return data if isinstance(data, dict) else {}


def fetched_spec(name: str, folder: str | os.PathLike | None = None) -> str:
    """The spec of the fetched set ``name``; DataError saying how to fetch it otherwise."""
    row = entry(name)
    rec = fetched(folder).get(row.name)
    if not rec or not os.path.isdir(rec.get("folder", "")):
        raise DataError(f"{row.name} is not fetched yet (run: snn-explorer data fetch {row.name})")
    return row.spec_for(rec["folder"])


# ----------------------------------------------------------------------------- download
def _download(name: str, arc: Archive, url: str, path: Path, stop: threading.Event):
    """Generator: download ``url`` to ``path`` via ``path.part``. Returns None when stopped,
    else whether the size was known (and so checked)."""
    part = path.with_name(path.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "snn-explorer"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have and arc.size == have:
            os.replace(part, path)  # the .part was already whole
            return True
        if exc.code == 416:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: the server refused to resume; run again") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None
    with resp:
        start = 0
        if have and resp.status == 206:
            start = _range_start(resp.headers.get("Content-Range"))
            if start != have:
                raise DownloadError(f"{url}: the server resumed at byte {start}, not {have}")
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else (arc.size or 0)
        done = start
        yield FetchProgress(name, "download", arc.name, done, total, start, f"downloading {url}")
        last = time.monotonic()
        with open(part, "ab" if start else "wb") as out:
            while True:
                if stop.is_set():
                    return None
                try:
                    chunk = resp.read1(CHUNK)  # what has arrived, not a full chunk
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    raise DownloadError(
                        f"{url}: connection lost after {done} of {total} bytes "
                        f"({type(exc).__name__}); run again to resume"
                    ) from None
                if not chunk:
                    break
                out.write(chunk)
                out.flush()  # a killed process leaves every byte received for the resume
                done += len(chunk)
                if time.monotonic() - last > 0.1:
                    last = time.monotonic()
                    yield FetchProgress(name, "download", arc.name, done, total, start)
    if total and done != total:
        raise DownloadError(
            f"{url}: connection closed after {done} of {total} bytes; run again to resume"
        )
    yield FetchProgress(name, "download", arc.name, done, total or done, start)
    os.replace(part, path)
    return bool(total)


def _range_start(header: str | None) -> int:
    try:  # "bytes START-END/SIZE"
        return int((header or "").split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def _verify(arc: Archive, path: Path) -> str:
    """Check the downloaded file; returns how ("sha256", "md5" or "size"). Removes a bad file."""
    size = path.stat().st_size
    if arc.size is not None and size != arc.size:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{arc.name}: {size} bytes, expected {arc.size}; file removed")
    if not arc.checksum:
        return "size"
    algo, _, want = arc.checksum.partition(":")
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != want.lower():
        path.unlink(missing_ok=True)
        raise DownloadError(
            f"{arc.name}: {algo} checksum mismatch (expected {want[:12]}..., got "
            f"{h.hexdigest()[:12]}...); file removed, nothing extracted"
        )
    return algo


# ----------------------------------------------------------------------------- unpacking
def _unpack(arc: Archive, path: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if arc.unpack == "zip":
            with zipfile.ZipFile(path) as zf:
                root = dest.resolve()
                for member in zf.namelist():
                    if not (dest / member).resolve().is_relative_to(root):
                        raise DataError(f"{arc.name}: member {member!r} points outside the folder")
                zf.extractall(dest)
        elif arc.unpack == "tar.gz":
            with tarfile.open(path, "r:gz") as tf:
                tf.extractall(dest, filter="data")
        elif arc.unpack == "gunzip":
            out = dest / arc.name.removesuffix(".gz")
            with gzip.open(path, "rb") as src, open(out, "wb") as fh:
                shutil.copyfileobj(src, fh, CHUNK)
        else:
            shutil.copyfile(path, dest / arc.name)
    except (zipfile.BadZipFile, tarfile.TarError, gzip.BadGzipFile, EOFError, OSError) as exc:
        path.unlink(missing_ok=True)  # a damaged download: the next run fetches it anew
        raise DataError(f"{arc.name}: cannot unpack ({exc}); file removed, run again") from None


def _flatten(folder: Path) -> None:
    """A GitHub archive holds one top folder (``repo-commit/``): lift its contents up."""
    items = [p for p in folder.iterdir()]
    if len(items) == 1 and items[0].is_dir():
        inner = items[0]
        for p in inner.iterdir():
            os.replace(p, folder / p.name)
        inner.rmdir()


def _swap_in(tmp: Path, target: Path) -> None:
    """Replace ``target`` by ``tmp`` (an old copy is moved aside first, then removed)."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _write_manifest(kind: str, folder: Path) -> None:
    """``snn-explorer-manifest.csv`` (path,label,split,group) for sets published with a CSV of
    their own in another layout."""
    if kind == "esc50":
        meta = folder / "meta" / "esc50.csv"
        rows = _read_csv(meta)
        out = [
            (
                f"audio/{r['filename']}",
                r["category"],
                "test" if r["fold"] == "5" else "train",
                r.get("src_file", ""),
            )
            for r in rows
        ]
    elif kind == "kitchen20":
        meta = folder / "kitchen20.csv"
        rows = _read_csv(meta)
        out = [(r["path"], r["category"], "", r.get("usr_id", "")) for r in rows]
    else:  # pragma: no cover - a catalog typo
        raise DataError(f"catalog: unknown manifest kind {kind!r}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "label", "split", "group"])
    w.writerows(out)
    write_atomic(folder / "snn-explorer-manifest.csv", buf.getvalue())


def _read_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None


def _record(root: Path, row: CatalogEntry, result: FetchedSet, got) -> None:
    try:
        data = fetched(root)
    except DataError:
        data = {}  # an unreadable record is rewritten
    data[row.name] = {
        "folder": result.folder,
        "spec": result.spec,
        "licence": row.licence,
        "split": row.split,
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {arc.name: how for arc, _p, how in got},
    }
    write_atomic(root / RECORD_NAME, json.dumps(data, indent=1, sort_keys=True) + "\n")
