"""engine.data.fetch against a real HTTP server on 127.0.0.1 serving archives built here."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fetchkit import FSDD_ZIP, fsdd_zip, sha256

from engine.data.catalog import entry
from engine.data.fetch import fetch, fetched, fetched_spec
from engine.data.specs import open_source
from engine.errors import DataError, DownloadError

ROOT = Path(__file__).resolve().parents[3]


def run(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as done:
            return done.value, events


def one_line(exc) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


@pytest.fixture
def archives(tmp_path):
    return fsdd_zip(tmp_path / "srv").parent


def test_good_fetch_lands_whole_and_opens_by_name(archives, media_server, tmp_path, monkeypatch):
    srv = media_server(archives)
    dest = tmp_path / "data"
    result, events = run(fetch("fsdd", dest, base_url=srv.url()))
    assert result.folder == str(dest / "fsdd")
    assert result.spec == f"fsdd:{dest / 'fsdd' / 'recordings'}"
    assert "CC BY-SA 4.0" in result.licence
    # no pinned checksum for a GitHub archive: verified by size only, and said so
    assert any("verified by size only" in w for w in result.warnings)
    assert [e.phase for e in events][-1] == "done"
    assert events[-2].phase == "extract"
    assert sorted(os.listdir(dest)) == [".downloads", "fetched.json", "fsdd"]
    assert os.listdir(dest / ".downloads") == []  # archive removed once unpacked
    assert fetched(dest)["fsdd"]["files"] == {FSDD_ZIP: "size"}
    src = open_source(result.spec)
    assert len(src.items) == 24 and src.class_names[:3] == ["0", "1", "2"]
    # the bare name opens the fetched set from the default data folder
    monkeypatch.setenv("SNN_EXPLORER_DATA", str(dest))
    assert fetched_spec("fsdd") == result.spec
    assert open_source("fsdd").spec == result.spec


def test_checksum_verified_when_pinned(archives, media_server, tmp_path):
    srv = media_server(archives)
    row = entry("fsdd")
    arc = dataclasses.replace(row.archives[0], checksum=f"sha256:{sha256(archives / FSDD_ZIP)}")
    row = dataclasses.replace(row, archives=(arc,))
    result, _ = run(fetch(row, tmp_path / "d", base_url=srv.url()))
    assert result.warnings == ()
    assert fetched(tmp_path / "d")["fsdd"]["files"] == {FSDD_ZIP: "sha256"}


def test_wrong_checksum_refused_nothing_extracted(archives, media_server, tmp_path):
    srv = media_server(archives)
    row = entry("fsdd")
    arc = dataclasses.replace(row.archives[0], checksum="sha256:" + "0" * 64)
    row = dataclasses.replace(row, archives=(arc,))
    dest = tmp_path / "d"
    with pytest.raises(DownloadError) as exc:
        run(fetch(row, dest, base_url=srv.url()))
    assert "checksum mismatch" in one_line(exc) and "nothing extracted" in str(exc.value)
    assert sorted(os.listdir(dest)) == [".downloads"]  # no set, no temp folder, no record
    assert os.listdir(dest / ".downloads") == []  # the bad file is gone: a rerun downloads anew


def test_truncated_download_keeps_part_and_rerun_resumes(archives, media_server, tmp_path):
    bad = media_server(archives, {FSDD_ZIP: "truncate"})
    dest = tmp_path / "d"
    with pytest.raises(DownloadError) as exc:
        run(fetch("fsdd", dest, base_url=bad.url()))
    msg = one_line(exc)
    size = (archives / FSDD_ZIP).stat().st_size
    assert f"of {size} bytes" in msg and "run again to resume" in msg
    part = dest / ".downloads" / (FSDD_ZIP + ".part")
    assert part.stat().st_size == size // 2
    assert not (dest / "fsdd").exists()
    good = media_server(archives)
    result, events = run(fetch("fsdd", dest, base_url=good.url()))
    assert good.ranges == [(FSDD_ZIP, f"bytes={size // 2}-")]
    assert events[0].resumed_from == size // 2
    assert len(open_source(result.spec).items) == 24


def test_killed_fetch_resumes_with_range(archives, media_server, tmp_path):
    slow = media_server(archives, {FSDD_ZIP: "slow"}, slow_bps=40_000)
    dest = tmp_path / "d"
    code = (
        "import sys; from engine.data.fetch import fetch\n"
        "for _ in fetch('fsdd', sys.argv[1], base_url=sys.argv[2]): pass\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(dest), slow.url()], cwd=ROOT, env=dict(os.environ)
    )
    part = dest / ".downloads" / (FSDD_ZIP + ".part")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if part.is_file() and part.stat().st_size >= 8000:
                break
            assert child.poll() is None, "the child ended before it could be killed"
            time.sleep(0.05)
        child.kill()
    finally:
        child.wait(10)
    have = part.stat().st_size
    total = (archives / FSDD_ZIP).stat().st_size
    assert 8000 <= have < total
    good = media_server(archives)
    result, events = run(fetch("fsdd", dest, base_url=good.url()))
    assert good.ranges == [(FSDD_ZIP, f"bytes={have}-")]
    assert events[0].resumed_from == have
    assert len(open_source(result.spec).items) == 24


def test_stop_keeps_part(archives, media_server, tmp_path):
    slow = media_server(archives, {FSDD_ZIP: "slow"}, slow_bps=40_000)
    stop = threading.Event()
    gen = fetch("fsdd", tmp_path / "d", base_url=slow.url(), stop=stop)
    next(gen)
    stop.set()
    result, _ = run(gen)
    assert result is None
    assert (tmp_path / "d" / ".downloads" / (FSDD_ZIP + ".part")).is_file()
    assert not (tmp_path / "d" / "fsdd").exists()


def test_404_is_one_line(media_server, tmp_path):
    (tmp_path / "empty").mkdir()
    srv = media_server(tmp_path / "empty")
    with pytest.raises(DownloadError) as exc:
        run(fetch("mnist", tmp_path / "d", base_url=srv.url()))
    assert "HTTP 404" in one_line(exc) and "train-images-idx3-ubyte.gz" in str(exc.value)


def test_unfetched_name_says_how(tmp_path, monkeypatch):
    monkeypatch.setenv("SNN_EXPLORER_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"run: snn-explorer data fetch esc50"):
        open_source("esc50")
    with pytest.raises(DataError, match="fetchable: fsdd, esc50"):
        entry("nope")


def test_esc50_gets_a_manifest_with_its_folds(media_server, tmp_path, monkeypatch):
    from fetchkit import esc50_zip

    srv = media_server(esc50_zip(tmp_path / "srv").parent)
    result, _ = run(fetch("esc50", tmp_path / "d", base_url=srv.url()))
    assert result.spec == f"csv:{tmp_path / 'd' / 'esc50' / 'snn-explorer-manifest.csv'}"
    monkeypatch.setenv("SNN_EXPLORER_DATA", str(tmp_path / "d"))
    src = open_source("esc50")
    assert src.class_names == ["dog", "rooster"] and len(src.items) == 10
    test = [it for it in src.items if it.split == "test"]
    assert len(test) == 2 and all(os.path.basename(it.path).startswith("5-") for it in test)
    assert "CC BY-NC 3.0" in fetched()["esc50"]["licence"]


def test_speechcommands_tarball_unpacks_without_a_top_folder(media_server, tmp_path):
    from fetchkit import speechcommands_tar

    tar = speechcommands_tar(tmp_path / "srv")
    row = entry("speechcommands")
    # a pinned checksum is checked: the real one refuses this archive...
    with pytest.raises(DownloadError, match="sha256 checksum mismatch"):
        run(fetch(row, tmp_path / "d", base_url=media_server(tar.parent).url()))
    # ...and this archive's own passes
    arc = dataclasses.replace(row.archives[0], checksum=f"sha256:{sha256(tar)}")
    row = dataclasses.replace(row, archives=(arc,))
    result, _ = run(fetch(row, tmp_path / "d", base_url=media_server(tar.parent).url()))
    src = open_source(result.spec)
    assert src.class_names == ["no", "yes"]
    assert sorted(it.split for it in src.items) == [
        "test",
        "test",
        "train",
        "train",
        "train",
        "val",
    ]
    assert src.background_dir == str(tmp_path / "d" / "speechcommands" / "_background_noise_")


def test_kitchen20_manifest_keeps_source_recordings_together(media_server, tmp_path):
    import zipfile

    import soundfile as sf
    from fetchkit import tone

    srv = tmp_path / "srv"
    srv.mkdir()
    rows = [",category,fold,orig_idx,path,take,target,usr_id"]
    with zipfile.ZipFile(srv / "kitchen20.zip", "w") as zf:
        for i, (cat, target, usr) in enumerate(
            [("blender", 0, "111"), ("blender", 0, "111"), ("book", 13, "222"), ("book", 13, "333")]
        ):
            name = f"audio/0-{usr}-{'AB'[i % 2]}-{target}.wav"
            sf.write(tmp_path / "c.wav", tone(200 + 100 * i, 0.2, 22050), 22050)
            zf.write(tmp_path / "c.wav", f"kitchen20-8bc9544/{name}")
            rows.append(f"{i},{cat},0,{i},{name},{'AB'[i % 2]},{target},{usr}")
        zf.writestr("kitchen20-8bc9544/kitchen20.csv", "\n".join(rows) + "\n")
    result, _ = run(fetch("kitchen20", tmp_path / "d", base_url=media_server(srv).url()))
    src = open_source(result.spec)
    assert src.class_names == ["blender", "book"] and len(src.items) == 4
    assert [it.group for it in src.items] == ["111", "111", "222", "333"]
    assert all(it.split is None for it in src.items)  # carved by seed, groups whole


def test_an_archive_that_does_not_unpack_is_removed(media_server, tmp_path):
    srv = tmp_path / "srv"
    srv.mkdir()
    (srv / FSDD_ZIP).write_bytes(b"PK\x03\x04 this is no zip archive" * 50)
    dest = tmp_path / "d"
    with pytest.raises(DataError) as exc:
        run(fetch("fsdd", dest, base_url=media_server(srv).url()))
    assert "cannot unpack" in one_line(exc) and "run again" in str(exc.value)
    assert os.listdir(dest / ".downloads") == [] and not (dest / "fsdd").exists()
    assert [n for n in os.listdir(dest) if n.startswith(".fsdd")] == []
