"""Download the clips of an AudioSet manifest in parallel, resumably, and cancellably.

Each clip runs in its own child process (``engine.audioset.ytdlp_child``: yt-dlp fetches only the segment
[start, end], audio only; ffmpeg converts it to mono WAV/FLAC at the target rate) so a slow or
stuck download can be killed at once, with its ffmpeg. The parent checks the result (sample rate,
channels, duration) and only then renames it into ``DIR/<class>/<ytid>_<start ms>.<fmt>``: a
partial file never carries a final name.

``DIR/download_state.json`` records every clip's state (pending, done, failed + reason), written
atomically. A rerun skips what is done (a final file that exists is verified and kept, even when a
killed run had no time to record it), retries transient failures (network, timeout, truncated...)
with exponential backoff, and leaves permanent ones (unavailable, private, http-404...) unless asked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections import Counter, deque
from collections.abc import Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from engine.atomic import write_atomic
from engine.audioset.clip_fetch import (  # re-exported
    TRANSIENT,
    Attempt,
    FetchSettings,
    classify_failure,
    fetch_clip,
    is_transient,
    verify_clip,
)
from engine.data.audioset_folder import (
    STATE_NAME,
    ManifestRow,
    is_valid_ytid,
    read_manifest,
    read_state,
    read_state_file,
)
from engine.errors import ConfigError, DownloadError

__all__ = [
    "TRANSIENT",
    "ClipOutcome",
    "DownloadConfig",
    "DownloadProgress",
    "DownloadResult",
    "DownloadStarted",
    "classify_failure",
    "download_clips",
    "is_transient",
    "read_state",
    "verify_clip",
]

YOUTUBE_TEMPLATE = "https://www.youtube.com/watch?v={ytid}"
_TMP_DIR = ".tmp"
_LOCK_NAME = ".download.lock"


@dataclass(frozen=True)
class DownloadConfig:
    """How to download. ``url_template`` (``http://host/audio/{ytid}.flac``) fetches from a
    mirror holding whole recordings instead of YouTube; ``{ytid}``, ``{start}`` and ``{end}`` are
    filled in. ``retries`` extra attempts go to transient failures, ``backoff_s * 2**k`` apart.
    """

    jobs: int = 4
    sample_rate: int = 16000
    url_template: str | None = None
    retries: int = 2
    backoff_s: float = 2.0
    clip_timeout_s: float = 180.0
    socket_timeout_s: float = 20.0
    retry_failed: bool = False
    tolerance_s: float = 0.1

    def __post_init__(self) -> None:
        if not 1 <= int(self.jobs) <= 64:
            raise ConfigError("jobs: must be between 1 and 64")
        if not 1000 <= int(self.sample_rate) <= 192000:
            raise ConfigError("sample_rate: must be between 1000 and 192000 Hz")
        if self.retries < 0 or self.backoff_s < 0 or self.clip_timeout_s <= 0:
            raise ConfigError("retries, backoff_s and clip_timeout_s must not be negative")
        t = self.url_template
        if t is not None:
            if "{ytid}" not in t or not re.match(r"https?://[^/\s]+", t):
                raise ConfigError(
                    f"url_template: {t!r} must be an http(s) address containing {{ytid}}"
                )

    def url(self, row: ManifestRow) -> str:
        if not self.url_template:
            return YOUTUBE_TEMPLATE.replace("{ytid}", row.ytid)
        return (
            self.url_template.replace("{ytid}", row.ytid)
            .replace("{start}", f"{row.start:g}")
            .replace("{end}", f"{row.end:g}")
        )


@dataclass(frozen=True)
class ClipOutcome:
    """How one clip ended: ``done``, ``failed`` (with a reason) or ``cancelled``."""

    key: str
    ytid: str
    class_name: str
    status: str
    reason: str = ""
    message: str = ""
    attempts: int = 0
    file: str = ""


@dataclass(frozen=True)
class DownloadStarted:
    total: int
    already_done: int
    skipped_failed: int
    to_fetch: int
    out_dir: str


@dataclass(frozen=True)
class DownloadProgress:
    """Counts after a clip ended (``last``) or a periodic heartbeat (``last`` None)."""

    total: int
    done: int
    failed: int
    pending: int
    active: int
    failures: tuple[tuple[str, int], ...]
    last: ClipOutcome | None = None


@dataclass(frozen=True)
class DownloadResult:
    total: int
    done: int
    failed: int
    pending: int
    failures: tuple[tuple[str, int], ...]
    failed_clips: tuple[ClipOutcome, ...]
    cancelled: bool
    state_path: str


# ----------------------------------------------------------------------------- state file
def _write_state(out_dir: Path, clips: dict[str, dict], sample_rate: int) -> None:
    state = {"version": 1, "sample_rate": sample_rate, "clips": clips}
    write_atomic(out_dir / STATE_NAME, json.dumps(state))


# ----------------------------------------------------------------------------- the job
def _lock(out_dir: Path):
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process guard, the atomic renames still hold
        return None
    fh = open(out_dir / _LOCK_NAME, "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise DownloadError(f"{out_dir}: another download is writing into this folder") from None
    return fh


def _find_ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if not path:
        raise DownloadError("ffmpeg not found: install it (apt-get install ffmpeg) and retry")
    return path


def download_clips(
    out_dir: str | os.PathLike,
    config: DownloadConfig | None = None,
    rows: Sequence[ManifestRow] | None = None,
    stop: threading.Event | None = None,
) -> Generator[DownloadStarted | DownloadProgress, None, DownloadResult]:
    """Fetch the manifest's clips into ``out_dir``; yields progress, returns a DownloadResult.

    ``rows`` defaults to ``out_dir/manifest.csv``. Setting ``stop`` ends the job within a
    second: running fetches are killed, their clips stay pending, the state file is saved.
    """
    cfg = config or DownloadConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if rows is None:
        rows, _ = read_manifest(out)
    rows = list(dict((r.key, r) for r in rows).values())  # a key appears once
    settings = FetchSettings(
        sample_rate=int(cfg.sample_rate),
        socket_timeout_s=cfg.socket_timeout_s,
        clip_timeout_s=cfg.clip_timeout_s,
        tolerance_s=cfg.tolerance_s,
        extractor="generic" if cfg.url_template else "youtube",
        ffmpeg=_find_ffmpeg(),
    )
    lock = _lock(out)
    try:
        return (yield from _download_locked(out, cfg, rows, settings, stop))
    finally:
        if lock is not None:
            lock.close()


def _download_locked(
    out: Path,
    cfg: DownloadConfig,
    rows: list[ManifestRow],
    settings: FetchSettings,
    stop: threading.Event | None,
) -> Generator[DownloadStarted | DownloadProgress, None, DownloadResult]:
    tmp_root = out / _TMP_DIR
    shutil.rmtree(tmp_root, ignore_errors=True)  # leftovers of a killed run (we hold the lock)
    tmp_root.mkdir()
    old_rate, old = read_state_file(out)
    trust_done = old_rate == int(cfg.sample_rate)  # else every existing file is checked again
    clips: dict[str, dict] = {}
    queue: deque[tuple[ManifestRow, int]] = deque()
    for row in rows:
        prev = old.get(row.key, {})
        final = out / row.file
        refused = _refuse(row)
        if refused:
            clips[row.key] = {"state": "failed", "file": row.file, "attempts": 0, **refused}
        elif final.is_file() and (
            (trust_done and prev.get("state") == "done")
            or not verify_clip(final, row.end - row.start, int(cfg.sample_rate), cfg.tolerance_s)
        ):
            clips[row.key] = {
                "state": "done",
                "file": row.file,
                "attempts": prev.get("attempts", 1),
            }
        elif (
            prev.get("state") == "failed"
            and not cfg.retry_failed
            and not is_transient(prev.get("reason", ""))
        ):
            clips[row.key] = prev
        else:
            clips[row.key] = {"state": "pending", "file": row.file, "attempts": 0}
            queue.append((row, 0))
    n_done = sum(1 for c in clips.values() if c["state"] == "done")
    n_failed = sum(1 for c in clips.values() if c["state"] == "failed")
    _write_state(out, clips, int(cfg.sample_rate))
    yield DownloadStarted(len(rows), n_done, n_failed, len(queue), str(out))

    halt = threading.Event()
    waiting: list[tuple[float, ManifestRow, int]] = []  # (not before, row, attempt) for retries
    active: dict[Future, tuple[ManifestRow, int]] = {}
    last_save = time.monotonic()
    cancelled = False

    def counts(last: ClipOutcome | None = None) -> DownloadProgress:
        states = Counter(c["state"] for c in clips.values())
        reasons = Counter(c.get("reason", "") for c in clips.values() if c["state"] == "failed")
        return DownloadProgress(
            total=len(rows),
            done=states["done"],
            failed=states["failed"],
            pending=states["pending"],
            active=len(active),
            failures=tuple(reasons.most_common()),
            last=last,
        )

    pool = ThreadPoolExecutor(max_workers=int(cfg.jobs), thread_name_prefix="audioset-fetch")
    try:
        last_beat = time.monotonic()
        while queue or waiting or active:
            if stop is not None and stop.is_set():
                cancelled = True
                break
            now = time.monotonic()
            for item in [w for w in waiting if w[0] <= now]:
                waiting.remove(item)
                queue.append(item[1:])
            while queue and len(active) < int(cfg.jobs):
                row, attempt = queue.popleft()
                fut = pool.submit(fetch_clip, row, cfg.url(row), settings, tmp_root, halt)
                active[fut] = (row, attempt + 1)
            if not active:
                time.sleep(0.05)  # only backoff waits remain
                continue
            finished, _ = wait(list(active), timeout=0.1, return_when=FIRST_COMPLETED)
            for fut in finished:
                row, attempt = active.pop(fut)
                res = fut.result()
                entry = _settle(out, row, res, attempt)
                if (
                    entry["state"] == "failed"
                    and is_transient(res.reason)
                    and attempt <= cfg.retries
                ):
                    entry = {**entry, "state": "pending"}
                    waiting.append(
                        (time.monotonic() + cfg.backoff_s * 2 ** (attempt - 1), row, attempt)
                    )
                clips[row.key] = entry
                yield counts(_outcome(row, entry) if entry["state"] != "pending" else None)
            now = time.monotonic()
            if now - last_save > 0.5:
                _write_state(out, clips, int(cfg.sample_rate))
                last_save = now
            if now - last_beat > 0.5:
                last_beat = now
                yield counts()
    finally:
        # cancelled, finished or interrupted: stop the fetches and save what is known
        halt.set()
        for fut, (row, attempt) in list(active.items()):
            res = fut.result()
            entry = _settle(out, row, res, attempt)
            if entry["state"] == "failed" and res.reason == "cancelled":
                entry = {"state": "pending", "file": row.file, "attempts": attempt - 1}
            clips[row.key] = entry
        pool.shutdown(wait=True)
        _write_state(out, clips, int(cfg.sample_rate))
        shutil.rmtree(tmp_root, ignore_errors=True)
    final = counts()
    failed = tuple(_outcome(r, clips[r.key]) for r in rows if clips[r.key]["state"] == "failed")
    return DownloadResult(
        total=final.total,
        done=final.done,
        failed=final.failed,
        pending=final.pending,
        failures=final.failures,
        failed_clips=failed,
        cancelled=cancelled,
        state_path=str(out / STATE_NAME),
    )


def _refuse(row: ManifestRow) -> dict:
    """Why a row must not be fetched at all (an empty dict when it may be)."""
    if not is_valid_ytid(row.ytid):
        return {"reason": "invalid-id", "message": f"{row.ytid[:20]!r} is not a YouTube video ID"}
    parts = Path(row.file).parts
    if Path(row.file).is_absolute() or ".." in parts or len(parts) != 2:
        return {"reason": "bad-path", "message": f"{row.file!r} is not CLASS/FILE"}
    return {}


def _settle(out: Path, row: ManifestRow, res: Attempt, attempt: int) -> dict:
    """Move a verified file to its final name, and return the clip's new state entry."""
    try:
        if res.ok:
            final = out / row.file
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(res.tmp_file, final)
            return {"state": "done", "file": row.file, "attempts": attempt}
        return {
            "state": "failed",
            "reason": res.reason,
            "message": res.message[:500],
            "file": row.file,
            "attempts": attempt,
        }
    finally:
        if res.workdir:
            shutil.rmtree(res.workdir, ignore_errors=True)


def _outcome(row: ManifestRow, entry: dict) -> ClipOutcome:
    return ClipOutcome(
        key=row.key,
        ytid=row.ytid,
        class_name=row.class_name,
        status=entry["state"],
        reason=entry.get("reason", ""),
        message=entry.get("message", ""),
        attempts=int(entry.get("attempts", 0)),
        file=entry.get("file", ""),
    )
