"""engine.audioset.download: real yt-dlp + ffmpeg against a Range-capable media server on 127.0.0.1.

The media are generated here: each second ``k`` of a recording is a tone of ``300 + 100 k`` Hz,
so a cut segment's pitch tells where it was cut from. Clips are short and timeouts small.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine import audioset
from engine.audioset.download import (
    DownloadConfig,
    DownloadProgress,
    DownloadStarted,
    classify_failure,
    download_clips,
    read_state,
)
from engine.data.specs import open_source
from engine.errors import ConfigError

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "ffmpeg"], capture_output=True).returncode != 0,
    reason="ffmpeg is not installed",
)

ONTOLOGY = [
    {"id": "/t/a", "name": "Alpha", "child_ids": ["/t/a1"], "restrictions": []},
    {"id": "/t/a1", "name": "Alpha one", "child_ids": [], "restrictions": []},
    {"id": "/t/b", "name": "Beta", "child_ids": [], "restrictions": []},
]
HEADER = "# made by a test\n# num_segs=?\n# YTID, start_seconds, end_seconds, positive_labels\n"


def write_media(folder: Path, name: str, sr: int = 22050, channels: int = 2, seconds: float = 6):
    """A FLAC whose second ``k`` is a ``300 + 100 k`` Hz tone."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(300 + 100 * np.floor(t)) / sr
    y = (0.3 * np.sin(phase)).astype(np.float32)
    sf.write(folder / f"{name}.flac", np.repeat(y[:, None], channels, axis=1), sr)


def peak_freq(y, sr):
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spec)]


def make_manifest(tmp_path: Path, rows: list[tuple[str, float, float, str]]) -> Path:
    """Select ``rows`` (ytid, start, end, label id) through the real selection; the out dir."""
    (tmp_path / "ontology.json").write_text(json.dumps(ONTOLOGY))
    lines = "".join(f'{y}, {s:.3f}, {e:.3f}, "{lab}"\n' for y, s, e, lab in rows)
    (tmp_path / "seg.csv").write_text(HEADER + lines)
    onto = audioset.load_ontology(tmp_path / "ontology.json")
    sel = audioset.select(
        onto,
        audioset.read_segments(tmp_path / "seg.csv"),
        audioset.SelectionConfig(classes=("Alpha", "Beta")),
    )
    out = tmp_path / "out"
    audioset.write_manifest(sel, out)
    return out


def drive(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as end:
            return events, end.value


def fetchers_in(folder: Path) -> list[int]:
    """PIDs of processes (ytfetch children, their ffmpeg) working inside ``folder``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(folder)):
            pids.append(int(entry))
    return pids


def test_classify_failure_messages():
    cases = {
        "ERROR: [youtube] abc: Private video. Sign in if you've been granted access": "private",
        "ERROR: [youtube] abc: Video unavailable": "unavailable",
        "ERROR: [youtube] x: This video is no longer available because the account...": "unavailable",
        "Unable to download webpage: HTTP Error 404: Not Found": "http-404",
        "HTTP Error 503: Service Unavailable": "http-503",
        "HTTP Error 502: Bad Gateway": "http-502",
        "Unable to download webpage: <urlopen error [Errno 111] Connection refused>": "network",
        "Read timed out.": "network",
        "Sign in to confirm you're not a bot": "rate-limited",
        "Sign in to confirm your age": "age-restricted",
        "ffmpeg: Invalid data found when processing input": "ffmpeg",
        "something odd": "error",
    }
    for message, reason in cases.items():
        assert classify_failure(message) == reason, message


def test_config_checks():
    for bad in (
        {"url_template": "http://host/audio.flac"},  # no {ytid}
        {"url_template": "file:///etc/{ytid}"},
        {"jobs": 0},
        {"sample_rate": 10},
        {"retries": -1},
    ):
        with pytest.raises(ConfigError):
            DownloadConfig(**bad)


def test_cuts_failures_and_rerun(tmp_path, media_server):
    media = tmp_path / "media"
    media.mkdir()
    write_media(media, "goodAAAAA01")
    write_media(media, "goodBBBBB02", sr=44100, channels=1)
    write_media(media, "goodCCCCC03")
    write_media(media, "truncated01")
    write_media(media, "slowslow001")
    rows = [
        ("goodAAAAA01", 2.0, 4.5, "/t/a"),
        ("goodBBBBB02", 0.0, 3.0, "/t/b"),
        ("goodCCCCC03", 3.0, 5.0, "/t/a1"),
        ("missing0404", 0.0, 2.0, "/t/a"),
        ("truncated01", 4.0, 5.5, "/t/b"),
        ("slowslow001", 1.0, 2.0, "/t/b"),
    ]
    out = make_manifest(tmp_path, rows)
    # one more row whose ID is not a YouTube ID (a hand-edited manifest)
    with open(out / "manifest.csv", "a") as fh:
        fh.write("Beta/x.wav,Beta,,x,bad id!;rm,0.000,2.000,/t/b,eval\n")
    server = media_server(media, {"truncated01.flac": "truncate", "slowslow001.flac": "slow"})
    cfg = DownloadConfig(
        jobs=3,
        sample_rate=16000,
        url_template=server.url("{ytid}.flac"),
        retries=1,
        backoff_s=0.1,
        clip_timeout_s=8,
    )
    events, result = drive(download_clips(out, cfg))
    assert isinstance(events[0], DownloadStarted) and events[0].to_fetch == 6
    assert result.total == 7 and result.done == 3 and result.pending == 0
    reasons = {c.ytid: c.reason for c in result.failed_clips}
    assert reasons == {
        "missing0404": "http-404",
        "truncated01": "truncated",
        "slowslow001": "timeout",
        "bad id!;rm": "invalid-id",
    }
    assert dict(result.failures) == {"http-404": 1, "truncated": 1, "timeout": 1, "invalid-id": 1}
    attempts = {c.ytid: c.attempts for c in result.failed_clips}
    assert attempts["truncated01"] == 2 and attempts["missing0404"] == 1  # only transient retried
    last = [e for e in events if isinstance(e, DownloadProgress)][-1]
    assert (last.done, last.failed) == (3, 4)
    # the cut segments: right rate, mono, duration, and cut from the right place
    for ytid, start, end, _ in rows[:3]:
        (path,) = out.glob(f"*/{ytid}_{int(start * 1000)}.wav")
        y, sr = sf.read(path, dtype="float32")
        assert sr == 16000 and y.ndim == 1
        assert abs(len(y) / sr - (end - start)) < 0.05
        head, tail = y[int(0.05 * sr) : int(0.45 * sr)], y[-int(0.45 * sr) : -int(0.05 * sr)]
        assert abs(peak_freq(head, sr) - (300 + 100 * np.floor(start + 0.25))) < 10
        assert abs(peak_freq(tail, sr) - (300 + 100 * np.floor(end - 0.25))) < 10
    assert not (out / ".tmp").exists() and not list(out.rglob("*.part"))
    state = read_state(out)
    assert {v["state"] for v in state.values()} == {"done", "failed"} and len(state) == 7

    # the data set sources read the result
    src = open_source(f"audioset:{out}")
    assert src.class_names == ["Alpha", "Beta"]
    assert sorted((Path(it.path).name, it.label) for it in src.items) == [
        ("goodAAAAA01_2000.wav", 0),
        ("goodBBBBB02_0.wav", 1),
        ("goodCCCCC03_3000.wav", 0),
    ]
    assert len(src.skipped) == 4 and any("http-404" in why for _, why in src.skipped)
    assert src.load(0).shape == (int(2.5 * 16000),)
    assert len(open_source(f"folder:{out}").items) == 3
    assert len(open_source(f"csv:{out / 'manifest.csv'}").items) == 3

    # the server recovers: a rerun fetches only the transient failures
    server.stop()
    server = media_server(media)
    cfg2 = DownloadConfig(jobs=3, sample_rate=16000, url_template=server.url("{ytid}.flac"))
    events, result = drive(download_clips(out, cfg2))
    assert events[0].already_done == 3 and events[0].skipped_failed == 2
    assert set(server.paths_requested("GET")) == {"truncated01.flac", "slowslow001.flac"}
    assert result.done == 5 and dict(result.failures) == {"http-404": 1, "invalid-id": 1}
    assert len(open_source(f"audioset:{out}").items) == 5


def test_unrecorded_and_broken_files(tmp_path, media_server):
    media = tmp_path / "media"
    media.mkdir()
    for name in ("keepKEEP001", "fixFIXFIX02"):
        write_media(media, name)
    out = make_manifest(tmp_path, [("keepKEEP001", 0, 2, "/t/a"), ("fixFIXFIX02", 1, 3, "/t/b")])
    # a run killed between the rename and the state write left a good file; another left junk
    (out / "Alpha").mkdir()
    sf.write(out / "Alpha" / "keepKEEP001_0.wav", np.zeros(32000, np.float32), 16000)
    (out / "Beta").mkdir()
    sf.write(out / "Beta" / "fixFIXFIX02_1000.wav", np.zeros(8000, np.float32), 16000)
    server = media_server(media)
    cfg = DownloadConfig(jobs=2, sample_rate=16000, url_template=server.url("{ytid}.flac"))
    events, result = drive(download_clips(out, cfg))
    assert events[0].already_done == 1 and result.done == 2
    assert set(server.paths_requested("GET")) == {"fixFIXFIX02.flac"}
    y, sr = sf.read(out / "Beta" / "fixFIXFIX02_1000.wav")
    assert len(y) == 2 * sr and np.abs(y).max() > 0.1  # replaced by the real cut
    # another sample rate: the done files are not trusted, both are fetched again
    cfg8 = DownloadConfig(jobs=2, sample_rate=8000, url_template=server.url("{ytid}.flac"))
    events, result = drive(download_clips(out, cfg8))
    assert events[0].already_done == 0 and result.done == 2
    assert {sf.info(p).samplerate for p in out.glob("*/*.wav")} == {8000}


def test_cancel_stops_fetches_quickly(tmp_path, media_server):
    media = tmp_path / "media"
    media.mkdir()
    names = [f"waitWAIT{i:03d}" for i in range(4)]
    for name in names:
        write_media(media, name, seconds=2)
    out = make_manifest(
        tmp_path, [(n, 0, 1, "/t/a" if i % 2 else "/t/b") for i, n in enumerate(names)]
    )
    server = media_server(media, {f"{n}.flac": "delay:60" for n in names})
    cfg = DownloadConfig(jobs=2, url_template=server.url("{ytid}.flac"), clip_timeout_s=120)
    stop = threading.Event()
    box = {}
    gen = download_clips(out, cfg, stop=stop)

    def consume():
        box["events"], box["result"] = drive(gen)

    worker = threading.Thread(target=consume)
    worker.start()
    deadline = time.monotonic() + 60
    while len(server.paths_requested("GET")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.paths_requested("GET")) >= 2, "the fetches never reached the server"
    t0 = time.monotonic()
    stop.set()
    worker.join(timeout=10)
    took = time.monotonic() - t0
    assert not worker.is_alive()
    result = box["result"]
    assert result.cancelled and result.pending == 4 and result.done == 0
    assert took < 3, f"cancelling took {took:.1f} s"  # the promise is about a second
    assert not fetchers_in(out) and not (out / ".tmp").exists()
    assert {v["state"] for v in read_state(out).values()} == {"pending"}


def _cli(out: Path, tmp_path: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "app",
        "dataset",
        "audioset",
        "--ontology",
        str(tmp_path / "ontology.json"),
        "--segments",
        str(tmp_path / "seg.csv"),
        "--classes",
        "Alpha,Beta",
        "--out",
        str(out),
        "--download",
        "--jobs",
        "2",
        "--timeout",
        "30",
        "--url-template",
        url,
    ]


def test_a_download_that_gets_no_clip_fails(tmp_path, media_server):
    """Two clips, neither on the server: the command says so and exits 1, not 0."""
    media = tmp_path / "media"
    media.mkdir()
    out = make_manifest(
        tmp_path, [("goneGONE001", 0.5, 2.5, "/t/a"), ("goneGONE002", 0, 2, "/t/b")]
    )
    server = media_server(media, {})
    done = subprocess.run(
        _cli(out, tmp_path, server.url("{ytid}.flac")), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "done 0 of 2, failed 2" in done.stdout
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("snn-explorer dataset: error: none of the 2 clips downloaded")
    )


@pytest.mark.slow
def test_killed_cli_download_resumes_exactly_once(tmp_path, media_server):
    media = tmp_path / "media"
    media.mkdir()
    names = [f"killKILL{i:03d}" for i in range(6)]
    for name in names:
        write_media(media, name, seconds=3)
    rows = [(n, 0.5, 2.5, "/t/a" if i % 2 else "/t/b") for i, n in enumerate(names)]
    out = make_manifest(tmp_path, rows)
    server = media_server(media, {f"{n}.flac": "delay:0.8" for n in names})
    cmd = _cli(out, tmp_path, server.url("{ytid}.flac"))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while len(list(out.glob("*/*.wav"))) < 2 and time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the CLI ended early: {proc.stderr.read().decode()[-500:]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    before = {p.name for p in out.glob("*/*.wav")}
    assert 2 <= len(before) < len(names), "the kill did not land midway"
    deadline = time.monotonic() + 15  # orphaned fetchers notice their parent died
    while fetchers_in(out) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not fetchers_in(out)
    n_first = len(server.requests)

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-1000:]
    assert "done 6 of 6" in done.stdout
    wavs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    expected = sorted(f"{'Alpha' if i % 2 else 'Beta'}/{n}_500.wav" for i, n in enumerate(names))
    assert [w for w in wavs if w.endswith(".wav")] == expected  # every clip exactly once
    assert set(wavs) - set(expected) <= {
        "manifest.csv",
        "selection.json",
        "download_state.json",
        ".download.lock",
    }
    for rel in expected:
        info = sf.info(out / rel)
        assert info.samplerate == 16000 and abs(info.frames / 16000 - 2.0) < 0.05
    second = {p for m, p in server.requests[n_first:] if m == "GET"}
    assert not second & {f"{Path(b).stem.rsplit('_', 1)[0]}.flac" for b in before}
    assert {v["state"] for v in read_state(out).values()} == {"done"}
