"""A small HTTP media server on 127.0.0.1 for download tests (Range requests, misbehaviours).

Python's ``http.server`` ignores ``Range``; yt-dlp cuts a segment by letting ffmpeg seek with
Range requests, so tests need a server that honours them. Each file can be told to misbehave:

- ``"truncate"``: headers promise the whole file (or range) but only the first half of the file is
  ever sent, then the connection closes;
- ``"slow"``: the body trickles out a few bytes at a time (a client with a timeout gives up);
- ``"delay:S"``: waits S seconds before answering, then behaves normally.

A path that is not in the folder answers 404. ``requests`` records every ``(method, path)`` so a
test can check which clips were fetched. Use as a context manager::

    with MediaServer(folder, behaviours={"b.flac": "truncate"}) as srv:
        url = srv.url("a.flac")
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TYPES = {".flac": "audio/flac", ".wav": "audio/wav", ".ogg": "audio/ogg", ".mp3": "audio/mpeg"}


class MediaServer:
    """Serve the files of ``folder`` on ``http://127.0.0.1:PORT/`` from a background thread."""

    def __init__(self, folder, behaviours: dict[str, str] | None = None, slow_bps: int = 200):
        self.folder = os.path.abspath(os.fspath(folder))
        self.behaviours = dict(behaviours or {})
        self.slow_bps = slow_bps
        self.requests: list[tuple[str, str]] = []
        self.ranges: list[tuple[str, str | None]] = []  # (path, Range header) of each request
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, name: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def paths_requested(self, method: str = "GET") -> list[str]:
        with self._lock:
            return [p for m, p in self.requests if m == method]

    def start(self) -> MediaServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _record(self, method: str, path: str, range_header: str | None = None) -> None:
        with self._lock:
            self.requests.append((method, path))
            self.ranges.append((path, range_header))


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients (ffmpeg seeking, killed downloads) drop connections all the time


def _make_handler(server: MediaServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:  # noqa: N802 - http.server API
            self._serve(body=False)

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            name = unquote(urlsplit(self.path).path).lstrip("/")
            server._record(self.command, name, self.headers.get("Range"))
            full = os.path.abspath(os.path.join(server.folder, name))
            if not full.startswith(server.folder + os.sep) or not os.path.isfile(full):
                self._send_plain(404, b"not found\n", body)
                return
            behaviour = server.behaviours.get(name, "")
            if behaviour.startswith("delay:"):
                if server._closing.wait(float(behaviour.split(":", 1)[1])):
                    return
            size = os.path.getsize(full)
            start, end = 0, size - 1
            status = 200
            header = self.headers.get("Range")
            if header:
                m = _RANGE.match(header.strip())
                if not m or (not m.group(1) and not m.group(2)):
                    self._send_plain(
                        416, b"bad range\n", body, extra={"Content-Range": f"bytes */{size}"}
                    )
                    return
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:  # suffix range: the last N bytes
                    start = max(0, size - int(m.group(2)))
                if start >= size or start > end:
                    self._send_plain(
                        416, b"bad range\n", body, extra={"Content-Range": f"bytes */{size}"}
                    )
                    return
                status = 206
            self.send_response(status)
            self.send_header(
                "Content-Type", _TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
            )
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if not body:
                return
            stop_at = end + 1
            if behaviour == "truncate":
                stop_at = min(stop_at, size // 2)
            try:
                with open(full, "rb") as fh:
                    fh.seek(start)
                    pos = start
                    while pos < stop_at and not server._closing.is_set():
                        if behaviour == "slow":
                            chunk = fh.read(min(max(1, server.slow_bps // 10), stop_at - pos))
                            time.sleep(0.1)
                        else:
                            chunk = fh.read(min(64 * 1024, stop_at - pos))
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        pos += len(chunk)
                self.wfile.flush()
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                return
            if pos < end + 1:
                # a truncated answer: drop the connection so the client sees a short body
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def _send_plain(self, code: int, text: bytes, body: bool, extra=None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if body:
                self.wfile.write(text)

    return Handler
