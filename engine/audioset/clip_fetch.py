"""One clip: fetch it in a child process, verify it, and name what went wrong.

``fetch_clip`` runs ``python -m engine.audioset.ytdlp_child`` in its own process group (so a stuck download is
killed at once, ffmpeg included), waits while watching the halt flag and the per-clip deadline,
then checks the result's rate, channels and duration. ``classify_failure`` turns yt-dlp's and
ffmpeg's messages into short reasons; ``is_transient`` says which a retry may cure.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engine.data.audioset_folder import ManifestRow

# reasons a retry may cure; all others are recorded and skipped by later runs
TRANSIENT = frozenset({"network", "timeout", "truncated", "rate-limited", "crash", "http-408"})

_RULES = (  # first match wins; applied to yt-dlp's and ffmpeg's messages
    ("private", r"private video|video is private"),
    ("age-restricted", r"confirm your age|age[- ]restricted|inappropriate for some users"),
    ("rate-limited", r"not a bot|http error 429|too many requests|rate.?limit"),
    (
        "unavailable",
        r"video unavailable|not available|no longer available|has been removed|been terminated"
        r"|copyright|does not exist|removed by the uploader|members-only|premieres in",
    ),
    ("http-404", r"http error 404|404 not found|server returned 404"),
    ("http-403", r"http error 403|403 forbidden|server returned 403"),
    (
        "network",
        r"timed out|connection (refused|reset|aborted)|name or service not known|name resolution"
        r"|network is unreachable|no route to host|urlopen error|remotedisconnected|incompleteread"
        r"|connection broken|ssl",
    ),
    ("truncated", r"partial file|premature end|end of file|contenttooshort|incomplete"),
    ("no-audio", r"requested format is not available|does not contain any stream|no audio"),
    ("unsupported", r"unsupported url"),
)


def classify_failure(message: str) -> str:
    """A short reason for a failure message: ``private``, ``unavailable``, ``http-404``, ..."""
    text = message.lower()
    for reason, pattern in _RULES:
        if re.search(pattern, text):
            return reason
    m = re.search(r"http error (\d{3})|server returned (\d{3})", text)
    if m:
        return f"http-{m.group(1) or m.group(2)}"
    return "ffmpeg" if text.startswith("ffmpeg") else "error"


def is_transient(reason: str) -> bool:
    return reason in TRANSIENT or bool(re.fullmatch(r"http-5\d\d", reason))


def verify_clip(path: str | os.PathLike, expected_s: float, sample_rate: int, tol: float) -> str:
    """Empty string when ``path`` is mono audio at ``sample_rate`` lasting ``expected_s`` (within
    ``tol``), else why not (``"truncated: ..."`` for a short file)."""
    import soundfile as sf

    try:
        info = sf.info(os.fspath(path))
    except (RuntimeError, OSError) as exc:  # soundfile reports unreadable files as RuntimeError
        return f"truncated: unreadable output ({str(exc).splitlines()[0][:120]})"
    if info.samplerate != sample_rate or info.channels != 1:
        return f"bad output: {info.samplerate} Hz, {info.channels} channels"
    got = info.frames / float(info.samplerate)
    if got < expected_s - tol:
        return f"truncated: got {got:.2f} s of {expected_s:.2f} s"
    return ""


@dataclass(frozen=True)
class FetchSettings:
    """What one fetch needs to know (from DownloadConfig, plus the ffmpeg found)."""

    sample_rate: int
    socket_timeout_s: float
    clip_timeout_s: float
    tolerance_s: float
    extractor: str  # "youtube" or "generic" (a mirror)
    ffmpeg: str


@dataclass(frozen=True)
class Attempt:
    """How one try went; ``tmp_file`` is the verified clip when ``ok``."""

    ok: bool
    reason: str = ""
    message: str = ""
    tmp_file: str = ""
    workdir: str = ""


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def fetch_clip(
    row: ManifestRow,
    url: str,
    settings: FetchSettings,
    tmp_root: Path,
    halt: threading.Event,
) -> Attempt:
    """Fetch ``row`` from ``url`` in a child process under ``tmp_root``; kill it on ``halt``.

    Returns an Attempt: ``ok`` with the converted, verified file in its private work folder, or
    the failure's reason and message. The caller removes ``Attempt.workdir``.
    """
    cfg = settings
    workdir = tempfile.mkdtemp(prefix=f"{row.key}-", dir=tmp_root)
    req = {
        "url": url,
        "start": row.start,
        "end": row.end,
        "workdir": workdir,
        "sample_rate": int(cfg.sample_rate),
        "format": os.path.splitext(row.file)[1].lstrip(".") or "wav",
        "socket_timeout": cfg.socket_timeout_s,
        "extractor": cfg.extractor,
        "ffmpeg": cfg.ffmpeg,
    }
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # so the child finds ``engine`` from anywhere
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    with open(os.path.join(workdir, "log.txt"), "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.audioset.ytdlp_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=workdir,
            env=env,
            start_new_session=True,  # its own process group: killed as one, ffmpeg included
        )
    try:
        try:
            proc.stdin.write((json.dumps(req) + "\n").encode())
            proc.stdin.flush()
        except OSError:
            pass  # it died at once: its missing result says so below
        deadline = time.monotonic() + cfg.clip_timeout_s
        while True:
            try:
                proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                if halt.is_set():
                    kill_group(proc)
                    return Attempt(False, "cancelled", "cancelled", workdir=workdir)
                if time.monotonic() > deadline:
                    kill_group(proc)
                    msg = f"no answer within {cfg.clip_timeout_s:g} s"
                    return Attempt(False, "timeout", msg, workdir=workdir)
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
    try:
        with open(os.path.join(workdir, "result.json"), encoding="utf-8") as fh:
            result = json.load(fh)
    except (OSError, ValueError):
        return Attempt(
            False, "crash", f"fetch process ended with code {proc.returncode}", workdir=workdir
        )
    if not result.get("ok"):
        message = str(result.get("message", ""))
        reason = classify_failure(message)
        if reason in ("error", "ffmpeg") and result.get("stage") == "convert":
            reason = "bad-media"
        return Attempt(False, reason, message, workdir=workdir)
    problem = verify_clip(
        result["file"], row.end - row.start, int(cfg.sample_rate), cfg.tolerance_s
    )
    if problem:
        reason = "truncated" if problem.startswith("truncated") else "bad-media"
        return Attempt(False, reason, problem, workdir=workdir)
    return Attempt(True, tmp_file=result["file"], workdir=workdir)
