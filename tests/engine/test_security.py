"""Security: files the app is given never run code, never write outside the chosen folder, and
never smuggle options into a command; the downloader fetches only what was asked.

Each "never ran" check has a control: the same payload, unpickled naively, does create the
marker file, so a regression would be seen.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import audioset
from engine.errors import CheckpointError, ConfigError, SnnError
from engine.models.registry import build_model, model_options
from engine.train.checkpoint import Predictor, load_checkpoint
from engine.train.config import RunConfig

ROOT = Path(__file__).resolve().parents[2]
HAS_FFMPEG = shutil.which("ffmpeg") is not None


class Evil:
    """Unpickling this runs ``touch marker`` (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, SNN_EXPLORER_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tree(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


# ----------------------------------------------------------------------------- checkpoints
def _good_parts():
    cfg = RunConfig(model="fc_snn", steps=2, model_options={"hidden": 8})
    torch.manual_seed(0)
    opts = model_options(cfg)
    model = build_model(cfg.model, (1, 20, 63), 2, **opts)
    return dict(
        config=cfg.to_dict(),
        model={"name": cfg.model, "input_shape": [1, 20, 63], "n_classes": 2, "options": opts},
        class_names=["a", "b"],
        weights=model.state_dict(),
        feature_config={"kind": "mfcc", "sample_rate": 8000, "duration": 1.0},
    )


def evil_checkpoints(folder: Path, marker: Path) -> dict[str, Path]:
    """Checkpoint-like files whose loading with plain pickle would run ``touch marker``."""
    evil = Evil(marker)
    parts = _good_parts()
    payloads = {
        "top level": evil,
        "format-marked dict": {"format": "snn-explorer-checkpoint", "version": 1, "x": evil},
        "inside the weights": {
            "format": "snn-explorer-checkpoint",
            "version": 1,
            **{k: json.dumps(v) for k, v in parts.items() if k != "weights"},
            "metrics": "{}",
            "state": "{}",
            "weights": {**parts["weights"], "fc1.weight": evil},
        },
        "inside the optimiser state": {
            "format": "snn-explorer-checkpoint",
            "version": 1,
            "optimizer": {"state": {0: [evil]}},
        },
    }
    out = {}
    for name, obj in payloads.items():
        p = folder / f"{len(out)}.pt"
        torch.save(obj, p)
        out[f"torch zip: {name}"] = p
    p = folder / "legacy.pt"
    torch.save(payloads["format-marked dict"], p, _use_new_zipfile_serialization=False)
    out["legacy (non-zip) torch file"] = p
    p = folder / "plain.pkl"
    p.write_bytes(pickle.dumps(evil, protocol=2))
    out["bare pickle"] = p
    # a torch-shaped zip whose data.pkl is a hand-made protocol-0 pickle calling os.system
    p = folder / "handmade.pt"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("archive/data.pkl", f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
        z.writestr("archive/version", b"3\n")
        z.writestr("archive/byteorder", b"little")
    out["zip with a protocol-0 data.pkl"] = p
    return out


def test_checkpoints_never_run_code(tmp_path):
    marker = tmp_path / "pwned"
    files = evil_checkpoints(tmp_path, marker)
    for name, path in files.items():
        for load in (load_checkpoint, Predictor.from_checkpoint):
            with pytest.raises(CheckpointError) as info:
                load(path)
            assert "\n" not in str(info.value) and path.name in str(info.value), name
        assert not marker.exists(), f"{name}: loading ran code"
    # control: the payload is live; a naive loader runs it
    pickle.loads(files["bare pickle"].read_bytes())
    assert marker.exists()


def test_cli_commands_given_a_hostile_checkpoint_run_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = evil_checkpoints(tmp_path, marker)["torch zip: format-marked dict"]
    clip = tmp_path / "x.wav"
    sf.write(clip, np.zeros(8000, np.float32), 8000)
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(evil, run / "checkpoint.pt")
    commands = [
        ["classify", "--checkpoint", str(evil), str(clip)],
        ["train", "--out", str(run), "--resume"],
        ["export", "--checkpoint", str(evil), "--format", "torchscript", "--out", str(tmp_path)],
    ]
    for args in commands:
        done = cli(*args)
        assert done.returncode != 0, args
        err = done.stderr.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in done.stderr, done.stderr[-1500:]
        assert not marker.exists(), f"{args[0]}: ran code"


def test_feature_cache_entries_are_never_unpickled(tmp_path):
    """A cache entry replaced by a pickled object array is recomputed, not loaded."""
    from engine.audio.features import FeatureConfig
    from engine.data.feature_set import load_feature_set

    marker = tmp_path / "pwned"
    data = tmp_path / "set"
    for c in ("a", "b"):
        (data / c).mkdir(parents=True)
        sf.write(data / c / "0.wav", 0.1 * np.ones(8000, np.float32), 8000)
    cache = tmp_path / "cache"
    first = load_feature_set(f"folder:{data}", FeatureConfig(), cache_dir=cache, jobs=1)
    entries = list(cache.rglob("*.npy"))
    assert entries
    for p in entries:
        np.save(p, np.array([Evil(marker)], dtype=object), allow_pickle=True)
    again = load_feature_set(f"folder:{data}", FeatureConfig(), cache_dir=cache, jobs=1)
    assert not marker.exists()
    assert np.array_equal(first.x, again.x)


# ----------------------------------------------------------------------------- output folders
LABELS = st.one_of(
    st.sampled_from(
        ["..", "../..", "../../etc", "/etc/passwd", "a/../../b", "~", "~root", ".hidden", "."]
        + ["CON", "nul", "a\x00b", "a\\..\\b", " ", "-rf", "$(touch x)", "x" * 300, "ü/ë"]
    ),
    st.text(max_size=20),
)


@settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(label=LABELS)
def test_recorded_class_names_stay_inside_the_data_set_folder(label, tmp_path_factory):
    from engine.live.recording import class_dir, save_clip

    root = tmp_path_factory.mktemp("rec")
    out = root / "set"
    out.mkdir()
    try:
        folder = class_dir(out, label)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert folder.parent == out.resolve()
    path = save_clip(out, label, np.zeros(160, np.float32), 16000)
    assert Path(path).resolve().is_relative_to(out.resolve())
    assert tree(root) - tree(out) == {str(out)}  # nothing was written beside the folder


HOSTILE_NAMES = ["../../escaped", "/tmp/abs", "..", "a/../../b", ".hidden", "x\x00y", "C:\\w"]


def test_audioset_class_names_and_manifest_rows_stay_inside(tmp_path):
    """Class names from an ontology and rows of a hand-edited manifest map into the folder."""
    onto = [{"id": f"/t/{i}", "name": n, "child_ids": []} for i, n in enumerate(HOSTILE_NAMES)]
    (tmp_path / "ontology.json").write_text(json.dumps(onto))
    rows = "".join(
        f'id{i:09d}, 0, 2, "/t/{i}"\n'.replace(f"id{i:09d}", f"id{i:09d}"[:11])
        for i in range(len(HOSTILE_NAMES))
    )
    (tmp_path / "seg.csv").write_text(rows)
    sel = audioset.select(
        audioset.load_ontology(tmp_path / "ontology.json"),
        audioset.read_segments(tmp_path / "seg.csv"),
        audioset.SelectionConfig(classes=tuple(f"/t/{i}" for i in range(len(HOSTILE_NAMES)))),
    )
    out = tmp_path / "out"
    audioset.write_manifest(sel, out)
    with open(out / "manifest.csv", "a", encoding="utf-8") as fh:  # hand-edited rows
        fh.write("../../x.wav,../../../evil,,g,../../etc/pass,0,2,/t/0,eval\n")
        fh.write("/abs/y.wav,/abs,,g,-o /tmp/zz,0,2,/t/0,eval\n")
    manifest_rows, _classes = audioset.read_manifest(out)
    assert len(manifest_rows) == len(HOSTILE_NAMES) + 2
    for row in manifest_rows:
        target = (out / row.file).resolve()
        assert target.is_relative_to(out.resolve()), row.file
        assert target.parent.parent == out.resolve(), row.file  # exactly DIR/<class>/<file>
        assert not row.file.startswith((".", "/")) and "/." not in row.file


@pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg is not installed")
def test_ids_never_become_options_and_only_asked_clips_are_fetched(tmp_path, media_server):
    """Option-like IDs: invalid ones are refused before any fetch; valid ones that start with
    '-' are plain file names. The server sees requests for the asked clips only."""
    media = tmp_path / "media"
    media.mkdir()
    sr = 16000
    tone = (0.3 * np.sin(np.arange(3 * sr) * 0.1)).astype(np.float32)
    dashy = ["--exec-abcd", "-o_tmp_xyzw", "goodgoodgoo"]
    for ytid in dashy + ["notaskedxxx"]:
        sf.write(media / f"{ytid}.flac", tone, sr)
    marker = tmp_path / "pwned"
    onto = [{"id": "/t/a", "name": "Alpha"}, {"id": "/t/b", "name": "../Beta"}]
    (tmp_path / "ontology.json").write_text(json.dumps(onto))
    seg = "".join(f'{y}, 0.5, 2.5, "/t/{"ab"[i % 2]}"\n' for i, y in enumerate(dashy))
    (tmp_path / "seg.csv").write_text(seg)
    sel = audioset.select(
        audioset.load_ontology(tmp_path / "ontology.json"),
        audioset.read_segments(tmp_path / "seg.csv"),
        audioset.SelectionConfig(classes=("Alpha", "../Beta")),
    )
    out = tmp_path / "out"
    audioset.write_manifest(sel, out)
    invalid = ["--exec=tou", f"-o {marker}", "x; touch y", "--batch-file=/etc/passwd"]
    with open(out / "manifest.csv", "a", encoding="utf-8") as fh:
        for ytid in invalid:
            fh.write(f'Alpha/z.wav,Alpha,,g,"{ytid}",0,2,/t/a,eval\n')
    from engine.audioset.download import DownloadConfig, download_clips

    server = media_server(media)
    before = tree(tmp_path) - tree(out)
    gen = download_clips(out, DownloadConfig(jobs=2, url_template=server.url("{ytid}.flac")))
    while True:
        try:
            next(gen)
        except StopIteration as end:
            result = end.value
            break
    assert result.done == 3
    assert {c.ytid: c.reason for c in result.failed_clips} == {y: "invalid-id" for y in invalid}
    assert set(server.paths_requested("GET")) == {f"{y}.flac" for y in dashy}  # (ranges)
    assert not marker.exists() and not Path("y").exists()
    assert tree(tmp_path) - tree(out) == before  # nothing written outside the folder
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav"))
    assert files == sorted(
        ["Alpha/--exec-abcd_500.wav", "Alpha/goodgoodgoo_500.wav", "_Beta/-o_tmp_xyzw_500.wav"]
    )


def test_the_fetch_helper_treats_an_option_as_a_url(tmp_path):
    """``engine.audioset.ytdlp_child`` hands the URL to yt-dlp as data: '--exec ...' is not an option."""
    marker = tmp_path / "pwned"
    work = tmp_path / "work"
    work.mkdir()
    req = {
        "url": f"--exec=touch {marker}",
        "start": 0,
        "end": 1,
        "workdir": str(work),
        "sample_rate": 16000,
        "extractor": "generic",
        "socket_timeout": 2,
    }
    # as engine.audioset.clip_fetch starts it: its own process group, stdin open until it is done
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.audioset.ytdlp_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        proc.stdin.write((json.dumps(req) + "\n").encode())
        proc.stdin.flush()
        assert proc.wait(60) == 0
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    result = json.loads((work / "result.json").read_text())
    assert result["ok"] is False
    assert not marker.exists()


def test_segment_csv_ids_that_look_like_options_are_malformed_rows(tmp_path):
    p = tmp_path / "x_segments.csv"
    p.write_text(
        '-o /tmp/x00, 1, 2, "/m/x"\n--exec=rmrf, 1, 2, "/m/x"\n'
        '--PJHxphWEs, 1, 2, "/m/x"\n$(touch x), 1, 2, "/m/x"\n'
    )
    table = audioset.read_segments(p)
    assert list(table.ytid) == ["--PJHxphWEs"] and table.malformed_count == 3


def test_csv_manifest_paths_are_read_only_and_the_cache_stays_in_place(tmp_path):
    """A manifest may name clips anywhere the user can read (``../clips``); nothing is ever
    written there: features go to the cache, under names that are hashes."""
    from engine.audio.features import FeatureConfig
    from engine.data.feature_set import load_feature_set
    from engine.data.specs import open_source

    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(4):
        sf.write(clips / f"{i}.wav", 0.1 * np.ones(4000, np.float32), 8000)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "m.csv").write_text("".join(f"../clips/{i}.wav,{'ab'[i % 2]}\n" for i in range(4)))
    before = tree(tmp_path)
    cache = tmp_path / "cache"
    src = open_source(f"csv:{lists / 'm.csv'}")
    assert len(src.items) == 4
    load_feature_set(src, FeatureConfig(), cache_dir=cache, jobs=1)
    assert {p for p in tree(tmp_path) - before if not p.startswith(str(cache))} == set()


def test_a_wav_claiming_gigabytes_is_not_allocated(tmp_path):
    """Header sizes are checked against the file before anything is allocated."""
    from engine.audio.load import load_audio
    from engine.data.idx import read_idx

    buf = tmp_path / "claim.wav"
    sf.write(buf, np.zeros(100, np.float32), 8000)
    b = bytearray(buf.read_bytes())
    b[40:44] = struct.pack("<I", 0xFFFFFFF0)
    buf.write_bytes(bytes(b))
    with pytest.raises(SnnError, match="truncated"):
        load_audio(buf)
    idx = tmp_path / "claim-idx1-ubyte"
    idx.write_bytes(bytes([0, 0, 0x0E, 1]) + struct.pack(">I", 0xFFFFFFFF))
    with pytest.raises(SnnError, match="truncated"):
        read_idx(idx)


def test_the_fetch_helper_never_kills_its_callers_process_group(tmp_path):
    """Started by hand (not as a group leader) with its stdin closed, the helper's watchdog
    ends only the helper: the shell that started it goes on."""
    req = json.dumps({"url": "x", "start": 0, "end": 1, "workdir": str(tmp_path)})
    script = f"echo '{req}' | {sys.executable} -m engine.audioset.ytdlp_child; echo survived"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # the shell's group is its own: a regression kills only it
    )
    assert "survived" in done.stdout, (done.returncode, done.stderr[-500:])
