"""A person's own sounds, end to end, through a microphone: record, train with no options, listen.

espeak-ng speaks five words in 30 voice variants into the test's PulseAudio null sink;
``snn-explorer record`` captures them from the virtual microphone into a folder (one clip per
utterance, each played when the command says it is recording); ``snn-explorer train --data
folder:DIR --out RUN`` trains with no other option (the recipe sizes itself to the 150 clips);
``snn-explorer listen`` on the virtual microphone then hears new utterances in voices that were
not used for training (four voices, 20 utterances). The fraction heard right must be at least
80 %.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main

ROOT = Path(__file__).resolve().parents[3]
WORDS = ("yes", "no", "left", "right", "stop")
#: espeak-ng's accents and voice variants: 30 voices to train on (speed and pitch vary too) ...
_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029")
_TRAIN_VARIANTS = ("m1", "f1", "m3", "f2", "Andy", "m2", "f3", "m4", "Annie", "m6")
_TRAIN_VARIANTS += ("m5", "f5", "Alex", "Diogo", "Gene", "Henrique", "Jacky", "Lee", "Mike", "adam")
_TRAIN_VARIANTS += ("Alicia", "Andrea", "Benjamin", "Caleb", "David", "Ed", "Edward", "Hugo")
_TRAIN_VARIANTS += ("Max", "Michael")
TRAIN_VOICES = [
    (f"{_ACCENTS[i % 5]}+{v}", 140 + (7 * i) % 50, 30 + (13 * i) % 55)
    for i, v in enumerate(_TRAIN_VARIANTS)
]
#: ... and four others to listen to
NEW_VOICES = [("en-gb+m7", 160, 45), ("en-us+f4", 150, 75), ("en-us+john", 165, 50)]
NEW_VOICES += [("en-gb-x-rp+linda", 145, 60)]


def _need_espeak():
    if shutil.which("espeak-ng") is None:
        why = "espeak-ng is not installed (apt-get install espeak-ng)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def _speak(word: str, voice: tuple[str, int, int], path: Path) -> Path:
    name, speed, pitch = voice
    cmd = ["espeak-ng", "-v", name, "-s", str(speed), "-p", str(pitch), "-w", str(path), word]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    return path


def _record_word(pulse_server, word: str, clips: list[Path], out: Path) -> str:
    """``snn-explorer record`` of one class; each clip plays as the command starts recording it."""
    cmd = [sys.executable, "-m", "app.cli", "record", "--out", str(out), "--label", word]
    cmd += ["--seconds", "1.3", "--count", str(len(clips)), "--pause", "0.3"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, text=True, bufsize=1
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        m = re.match(r"recording clip (\d+)/", line)
        if m:
            pulse_server.play(clips[int(m.group(1)) - 1], wait=False)
    assert proc.wait(timeout=120) == 0, "".join(lines)
    return "".join(lines)


@pytest.mark.slow
def test_recorded_words_train_with_no_options_and_new_voices_are_heard(
    pulse_server, tmp_path, capsys
):
    _need_espeak()
    spoken = tmp_path / "spoken"
    spoken.mkdir()
    data = tmp_path / "my-words"
    for word in WORDS:
        clips = [_speak(word, v, spoken / f"{word}-{i}.wav") for i, v in enumerate(TRAIN_VOICES)]
        out = _record_word(pulse_server, word, clips, data)
        assert out.count("saved ") == len(TRAIN_VOICES), out
    counts = {p.name: len(list(p.glob("*.wav"))) for p in data.iterdir()}
    assert counts == dict.fromkeys(WORDS, len(TRAIN_VOICES))
    # the clips hold the words: every one is louder than the quiet room
    for f in data.glob("*/*.wav"):
        y, _ = sf.read(f, dtype="float32")
        assert np.abs(y).max() > 0.05, f

    run = tmp_path / "run"
    assert main(["train", "--data", f"folder:{data}", "--out", str(run), "--quiet"]) == 0
    train_out = capsys.readouterr().out
    assert (run / "best.pt").exists() and (run / "config.toml").exists()
    assert (run / "metrics.json").exists() and (run / "events.jsonl").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model"] == "csnn" and metrics["spiking"]  # the recommended spiking model
    assert not metrics["warning"], train_out  # not at chance

    # new utterances in voices never trained on, 1.8 s apart, into the microphone
    order = [(w, v) for v in NEW_VOICES for w in WORDS]
    rng = np.random.default_rng(0)
    order = [order[i] for i in rng.permutation(len(order))]
    sr = 22_050
    gap = np.zeros(int(1.8 * sr), np.float32)
    parts = [np.zeros(int(1.0 * sr), np.float32)]
    for i, (word, voice) in enumerate(order):
        y, rate = sf.read(_speak(word, voice, spoken / f"new-{i}.wav"), dtype="float32")
        assert rate == sr
        parts += [y, gap]
    take = tmp_path / "new-voices.wav"
    sf.write(take, np.concatenate(parts), sr)
    seconds = len(np.concatenate(parts)) / sr + 1.0
    players = []
    timer = threading.Timer(1.0, lambda: players.append(pulse_server.play(take, wait=False)))
    timer.start()
    code = main(
        ["listen", "--checkpoint", str(run / "best.pt"), "--sounds-only"]
        + ["--seconds", f"{seconds:.1f}"]
    )
    timer.join()
    players[0].wait(30)
    out, err = capsys.readouterr()
    assert code == 0, err
    heard = re.findall(r"^\* .* heard '(\S+)'", out, re.M)
    truth = [w for w, _ in order]
    right = sum(h == t for h, t in zip(heard, truth))
    assert len(heard) == len(truth), (heard, truth, out)
    (tmp_path / "heard.json").write_text(json.dumps({"heard": heard, "truth": truth}))
    assert right / len(truth) >= 0.8, (heard, truth)
