"""``snn-explorer listen`` and ``snn-explorer record``: real devices through PulseAudio, and none."""

from __future__ import annotations

import re
import threading

import numpy as np
import soundfile as sf

from app.cli import main


def test_listen_prints_what_the_microphone_hears(pulse_server, fsdd_checkpoint, fsdd_dir, capsys):
    players = []  # the clip starts once listen is surely listening
    timer = threading.Timer(
        1.0, lambda: players.append(pulse_server.play(fsdd_dir / "9_jackson_2.wav", wait=False))
    )
    timer.start()
    code = main(
        ["listen", "--checkpoint", fsdd_checkpoint.path, "--hop", "0.2", "--seconds", "2.5"]
    )
    timer.join()
    players[0].wait(10)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("listening on ")
    windows = re.findall(r"^\s+(\d+\.\d\d) s\s+(\S+)\s+(\d\.\d\d)\s+\[(\d+\.\d) ms", out, re.M)
    assert windows[0][1] == "(quiet)" and any(w[1] == "9" for w in windows), out
    assert len(windows) == 12  # 2.5 s, a window every 0.2 s
    assert [float(w[0]) for w in windows] == [round(0.2 * (i + 1), 2) for i in range(12)]
    heard = re.findall(r"^\* .* heard '(\S+)'", out, re.M)
    assert heard == ["9"], out
    assert re.search(r"12 windows, 1 sounds; latency median \d+\.\d ms", err)


def test_listen_sounds_only_and_a_file(fsdd_checkpoint, fsdd_dir, tmp_path, capsys):
    y, sr = sf.read(fsdd_dir / "6_lucas_0.wav", dtype="float32")
    gap = np.zeros(int(0.8 * sr), np.float32)
    path = tmp_path / "two.wav"
    y2, _ = sf.read(fsdd_dir / "1_george_3.wav", dtype="float32")
    sf.write(path, np.concatenate([gap, y, gap, y2, gap]), sr)
    code = main(
        ["listen", "--checkpoint", fsdd_checkpoint.path, "--file", str(path), "--sounds-only"]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    assert re.findall(r"heard '(\S+)'", out) == ["6", "1"] and "[" not in out


def test_listen_without_a_device_says_so(no_sound_server, fsdd_checkpoint, capsys):
    assert main(["listen", "--list-devices"]) == 0
    assert "no capture devices" in capsys.readouterr().out
    assert main(["listen", "--checkpoint", fsdd_checkpoint.path]) == 1
    err = capsys.readouterr().err
    assert err.startswith("snn-explorer listen: error: no audio capture device found")
    assert len(err.strip().splitlines()) == 1


def test_listen_refuses_bad_options(fsdd_checkpoint, tmp_path, capsys):
    assert main(["listen"]) == 1
    assert "--checkpoint is required" in capsys.readouterr().err
    assert main(["listen", "--checkpoint", fsdd_checkpoint.path, "--hop", "0"]) == 1
    assert "--hop must be a positive" in capsys.readouterr().err
    missing = tmp_path / "nope.pt"
    assert main(["listen", "--checkpoint", str(missing)]) == 1
    assert "no such checkpoint file" in capsys.readouterr().err


def test_record_cli_writes_clips_of_the_asked_length(pulse_server, tmp_path, capsys):
    tone = tmp_path / "tone.wav"
    t = np.arange(int(2.5 * 44100)) / 44100
    sf.write(tone, (0.4 * np.sin(2 * np.pi * 700 * t)).astype(np.float32), 44100)
    player = pulse_server.play(tone, wait=False)
    args = ["record", "--out", str(tmp_path / "set"), "--label", "beep", "--seconds", "0.4"]
    code = main(args + ["--count", "3", "--pause", "0.1", "--rate", "8000"])
    player.wait(10)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count("saved ") == 3 and "clips per class: beep 3" in out
    for f in sorted((tmp_path / "set" / "beep").glob("*.wav")):
        info = sf.info(f)
        assert info.samplerate == 8000 and info.frames == 3200


def test_record_cli_background_from_a_file_and_bad_labels(tmp_path, capsys):
    noise = tmp_path / "room.wav"
    sf.write(
        noise, (0.01 * np.random.default_rng(0).standard_normal(40000)).astype(np.float32), 16000
    )
    out_dir = tmp_path / "set"
    assert main(["record", "--out", str(out_dir), "--from-file", str(noise), "--count", "50"]) == 0
    assert "clips per class: background 2" in capsys.readouterr().out
    assert main(["record", "--out", str(out_dir), "--label", ".."]) == 1
    assert "class name '..'" in capsys.readouterr().err
