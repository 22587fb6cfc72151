"""engine.live.recording: safe class folders, atomic clips, counts, delete, background helper, recording."""

from __future__ import annotations

import os
import time

import numpy as np
import pulsekit
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError, DataError
from engine.live.recording import (
    BACKGROUND,
    ClipSaved,
    RecordLevel,
    RecordWaiting,
    add_background_from_file,
    class_counts,
    class_dir,
    delete_class,
    delete_clip,
    list_clips,
    record_clips,
    safe_label,
    save_clip,
    split_into_clips,
)


# ------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    "name, folder",
    [
        ("yes", "yes"),
        ("  dog bark ", "dog_bark"),
        ("a/b", "a_b"),
        ("../../etc", "etc"),
        ("..\\win", "win"),
        (".hidden", "hidden"),
        ("café-3", "café-3"),
        ("x" * 100, "x" * 64),
        ("two  spaces", "two_spaces"),
    ],
)
def test_safe_label_keeps_readable_names(name, folder):
    assert safe_label(name) == folder


@pytest.mark.parametrize("name", ["", "   ", "..", "/", "./..", "CON", "nul", "___"])
def test_safe_label_refuses_names_with_nothing_usable(name):
    with pytest.raises(ConfigError, match="class name"):
        safe_label(name)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=80))
def test_no_class_name_escapes_the_data_set_folder(tmp_path_factory, name):
    root = tmp_path_factory.getbasetemp() / "names"
    try:
        folder = class_dir(root, name)
    except ConfigError:
        return
    assert folder.parent == root.resolve()
    assert not folder.name.startswith(".") and "/" not in folder.name and "\\" not in folder.name
    assert folder.name not in ("", ".", "..")


def test_a_class_folder_that_links_elsewhere_is_refused(tmp_path):
    out, elsewhere = tmp_path / "set", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "dog")
    with pytest.raises(ConfigError, match="not inside"):
        class_dir(out, "dog")


# ------------------------------------------------------------------------- files
def _sine(seconds, rate, freq=440.0, amp=0.5):
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_clips_are_numbered_written_whole_and_counted(tmp_path):
    y = _sine(0.5, 16000)
    paths = [save_clip(tmp_path, "Dog bark", y, 16000) for _ in range(3)]
    assert [p.name for p in paths] == [f"Dog_bark_{i:04d}.wav" for i in (1, 2, 3)]
    data, rate = sf.read(paths[0], dtype="float32")
    info = sf.info(paths[0])
    assert rate == 16000 and info.subtype == "PCM_16" and info.channels == 1
    np.testing.assert_allclose(data, y, atol=1 / 32768 + 1e-6)
    save_clip(tmp_path, "cat", y, 16000)
    (tmp_path / "cat" / "notes.txt").write_text("not audio")
    (tmp_path / ".trash").mkdir()
    assert class_counts(tmp_path) == {"Dog_bark": 3, "cat": 1}
    assert not [p for p in (tmp_path / "cat").iterdir() if p.suffix == ".part"]
    # a number freed by deleting the last clip is not reused while later ones remain
    delete_clip(tmp_path, paths[1])
    assert save_clip(tmp_path, "Dog bark", y, 16000).name == "Dog_bark_0004.wav"


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    with pytest.raises(DataError):
        save_clip(tmp_path, "dog", np.zeros(0, np.float32), 16000)
    with pytest.raises(Exception):  # noqa: B017 - soundfile refuses the rate
        save_clip(tmp_path, "dog", np.zeros(100, np.float32), 0)
    assert list((tmp_path / "dog").iterdir()) == []


def test_delete_refuses_anything_outside_the_data_set(tmp_path):
    out = tmp_path / "set"
    clip = save_clip(out, "dog", _sine(0.2, 8000), 8000)
    outside = tmp_path / "precious.wav"
    sf.write(outside, np.zeros(10, np.float32), 8000)
    for bad in (outside, out / "dog" / ".." / ".." / "precious.wav", out / "dog" / "x.txt"):
        with pytest.raises(DataError, match="not deleted"):
            delete_clip(out, bad)
    assert outside.exists()
    delete_clip(out, clip)
    assert list_clips(out, "dog") == []
    assert delete_class(out, "dog") == 0 and not (out / "dog").exists()


def test_background_helper_cuts_a_long_file_into_clips(tmp_path):
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal(int(3.5 * 22050))).astype(np.float32)
    src = tmp_path / "room.wav"
    sf.write(src, noise, 22050)
    paths = add_background_from_file(tmp_path / "set", src, seconds=1.0)
    assert len(paths) == 3 and all(p.parent.name == BACKGROUND for p in paths)
    for p in paths:
        info = sf.info(p)
        assert info.samplerate == 16000 and info.frames == 16000
    assert len(split_into_clips(np.zeros(1000), 100, 2.0, hop_s=1.0)) == 9
    with pytest.raises(DataError, match="shorter"):
        add_background_from_file(tmp_path / "set", src, seconds=5.0)


# ------------------------------------------------------------------------- through PulseAudio
def _dominant(y, rate):
    seg = y[len(y) // 4 : 3 * len(y) // 4]
    return np.argmax(np.abs(np.fft.rfft(seg * np.hanning(len(seg))))) * rate / len(seg)


def test_record_clips_through_the_virtual_microphone(pulse_server, tmp_path):
    tone = tmp_path / "tone.wav"
    sf.write(tone, _sine(3.0, 44100, 660.0), 44100)
    out = tmp_path / "set"
    player = pulse_server.play(tone, wait=False)
    time.sleep(0.3)  # the tone is playing before the first clip starts
    events = list(record_clips(out, "tone", seconds=0.5, count=3, pause_s=0.2))
    player.wait(10)
    saved = [e for e in events if isinstance(e, ClipSaved)]
    assert len(saved) == 3 and any(isinstance(e, RecordWaiting) for e in events)
    levels = [e for e in events if isinstance(e, RecordLevel)]
    assert levels and max(e.peak for e in levels) > 0.3
    for e in saved:
        y, rate = sf.read(e.path, dtype="float32")
        assert rate == 16000 and len(y) == 8000 and e.seconds == 0.5
        assert _dominant(y, rate) == pytest.approx(660, abs=5)
    assert class_counts(out) == {"tone": 3}


@pytest.mark.slow
def test_a_recorded_data_set_trains_for_one_epoch(pulse_server, tmp_path):
    """Two classes recorded through the microphone (a tone; the background helper on silence),
    then one epoch of the real training engine on ``folder:DIR``."""
    from engine.train.config import RunConfig

    out = tmp_path / "set"
    tone = tmp_path / "tone.wav"
    sf.write(tone, _sine(4.0, 44100, 500.0), 44100)
    player = pulse_server.play(tone, wait=False)
    time.sleep(0.3)
    list(record_clips(out, "tone", seconds=0.5, count=6))
    player.wait(10)
    result = None
    gen = record_clips(out, BACKGROUND, seconds=0.5, count=6, split=True)
    while True:
        try:
            next(gen)
        except StopIteration as done:
            result = done.value
            break
    assert result.counts == {BACKGROUND: 6, "tone": 6} and not result.stopped
    run_training = pulsekit.run_training
    cfg = RunConfig(data=f"folder:{out}", model="cnn", epochs=1, batch=4, seed=0)
    trained = run_training(cfg, tmp_path / "run")
    assert trained.status == "completed" and trained.epochs_done == 1
    assert (tmp_path / "run" / "checkpoint.pt").exists()
