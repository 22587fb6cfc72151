"""Fetch ONE clip with yt-dlp and convert it with ffmpeg, in a child process of ``engine.audioset.download``.

Run as ``python -m engine.audioset.ytdlp_child`` with one JSON request line on stdin::

    {"url": ..., "start": s, "end": s, "workdir": dir, "sample_rate": sr, "format": "wav",
     "socket_timeout": s, "extractor": "generic" | "youtube", "ffmpeg": path}

It writes ``workdir/result.json`` (``{"ok": true, "file": path}`` or ``{"ok": false, "stage":
"download" | "convert", "message": text}``). The process leads its own process group; if its stdin
reaches end-of-file before the work is done (the parent cancelled, timed out or died), it kills the
whole group, so neither it nor yt-dlp's ffmpeg keeps writing. Nothing here goes through a shell:
the URL is built by the parent from a validated ID, and every program gets an argument list.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

from engine.atomic import write_atomic


class _Log:
    """Collects yt-dlp's messages so the parent can tell why a download failed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self.lines.append(str(msg))

    def error(self, msg: str) -> None:
        self.lines.append(str(msg))


def _download(req: dict) -> str:
    import yt_dlp
    from yt_dlp.utils import download_range_func

    workdir = req["workdir"]
    log = _Log()
    opts = {
        "format": "bestaudio/best",
        "download_ranges": download_range_func(None, [(float(req["start"]), float(req["end"]))]),
        "force_keyframes_at_cuts": True,
        "outtmpl": {"default": os.path.join(workdir, "src.%(ext)s")},
        "paths": {"home": workdir, "temp": workdir},
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        "logger": log,
        "socket_timeout": float(req.get("socket_timeout", 20)),
        "retries": 1,
        "fragment_retries": 1,
        "extractor_retries": 0,
        "noplaylist": True,
        "cachedir": False,
        "overwrites": True,
        "allowed_extractors": [req.get("extractor", "generic")],
    }
    if req.get("ffmpeg"):
        opts["ffmpeg_location"] = req["ffmpeg"]
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            ydl.download([req["url"]])
    except Exception as exc:  # yt-dlp raises its own DownloadError with the reason in the text
        text = " | ".join(dict.fromkeys([str(exc), *log.lines[-3:]]))  # without repeats
        raise RuntimeError(text) from None
    names = [
        n
        for n in os.listdir(workdir)
        if n.startswith("src.") and not n.endswith((".part", ".ytdl", ".temp"))
    ]
    if not names:
        raise RuntimeError(" | ".join(["no file was written", *log.lines[-3:]]))
    return os.path.join(workdir, sorted(names)[0])


def _convert(req: dict, src: str) -> str:
    fmt = req.get("format", "wav")
    out = os.path.join(req["workdir"], f"clip.{fmt}")
    codec = ["-c:a", "pcm_s16le"] if fmt == "wav" else ["-c:a", "flac"]
    cmd = [
        req.get("ffmpeg") or "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        src,
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(int(req["sample_rate"])),
        "-t",
        f"{float(req['end']) - float(req['start']):.3f}",
        "-f",
        fmt,
        *codec,
        out,
    ]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-2:]) or f"exit code {proc.returncode}"
        raise RuntimeError(f"ffmpeg: {tail}")
    return out


def _write_result(workdir: str, result: dict) -> None:
    write_atomic(os.path.join(workdir, "result.json"), json.dumps(result))


def main() -> int:
    if os.getpgrp() != os.getpid():
        # started without a group of its own (by hand, not by engine.audioset.clip_fetch): make one,
        # so the watchdog's killpg below can never take the caller's group down with it
        os.setpgrp()
    req = json.loads(sys.stdin.readline())
    finished = threading.Event()

    def watchdog() -> None:
        try:
            sys.stdin.read()  # returns at end-of-file: the parent closed the pipe or died
        except (OSError, ValueError):
            pass
        if not finished.is_set():
            os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watchdog, daemon=True).start()
    stage = "download"
    try:
        src = _download(req)
        stage = "convert"
        out = _convert(req, src)
        result = {"ok": True, "file": out}
    except Exception as exc:
        result = {"ok": False, "stage": stage, "message": str(exc)[:2000]}
    _write_result(req["workdir"], result)
    finished.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
