"""First launch from the command line: fetch a set by name, train on it, classify, "unknown"."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
from fetchkit import fsdd_zip, tone

from app.cli import main


def _empty_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.delenv("SNN_EXPLORER_DATA", raising=False)
    return home


def test_fetch_train_classify_unknown(tmp_path, monkeypatch, media_server, capsys):
    home = _empty_home(tmp_path, monkeypatch)
    srv = media_server(fsdd_zip(tmp_path / "srv", digits=3, per_digit=16).parent)
    monkeypatch.setenv("SNN_EXPLORER_FETCH_BASE", srv.url())

    assert main(["data", "list"]) == 0
    assert "fsdd" in capsys.readouterr().out

    assert main(["data", "fetch", "fsdd"]) == 0
    out, err = capsys.readouterr()
    assert "licence: CC BY-SA 4.0" in out and "open it with: --data fsdd" in out
    assert "verified by size only" in err
    assert (home / ".local/share/snn-explorer/fsdd/recordings/0_george_0.wav").is_file()
    asked = len(srv.paths_requested())
    assert main(["data", "fetch", "fsdd"]) == 0  # there already: nothing downloaded
    assert "already fetched into" in capsys.readouterr().out
    assert len(srv.paths_requested()) == asked

    assert main(["data", "info", "--data", "fsdd"]) == 0
    assert "licence    CC BY-SA 4.0" in capsys.readouterr().out

    run = tmp_path / "r"
    argv = ["train", "--data", "fsdd", "--model", "cnn", "--epochs", "2", "--out", str(run)]
    assert main([*argv, "--batch", "8", "--quiet"]) == 0
    capsys.readouterr()

    clip = tmp_path / "clip.wav"
    sf.write(clip, tone(700, seed=99), 8000)  # digit 1's tone
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(2000, dtype=np.float32), 8000)
    ckpt = str(run / "best.pt")
    assert main(["classify", "--checkpoint", ckpt, str(clip), str(zero), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["label"] in ("0", "1", "2", "unknown")
    assert rows[0]["best_guess"] in ("0", "1", "2")
    assert rows[1]["label"] == "unknown"
    # a threshold over the top probability answers "unknown"; 0 keeps the best guess
    top = max(rows[0]["probs"].values())
    high = f"{min(top + 0.01, 1.0):.4f}" if top < 0.99 else "1"
    said = "unknown" if top < float(high) else rows[0]["best_guess"]
    assert main(["classify", "--checkpoint", ckpt, str(clip), "--threshold", high]) == 0
    assert capsys.readouterr().out.split()[1] == said
    assert main(["listen", "--checkpoint", ckpt, "--file", str(clip), "--threshold", high]) == 0
    assert said in capsys.readouterr().out
    assert main(["classify", "--checkpoint", ckpt, str(clip), "--threshold", "2"]) == 1
    assert "--threshold 2.0 must be between 0 and 1" in capsys.readouterr().err
    assert main(["classify", "--checkpoint", ckpt, str(clip), "--threshold", "0"]) == 0
    assert capsys.readouterr().out.split()[1] == rows[0]["best_guess"]


def test_fetch_errors_are_one_line(tmp_path, monkeypatch, media_server, capsys):
    _empty_home(tmp_path, monkeypatch)
    (tmp_path / "none").mkdir()
    monkeypatch.setenv("SNN_EXPLORER_FETCH_BASE", media_server(tmp_path / "none").url())
    assert main(["data", "fetch", "fsdd"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("snn-explorer data: error: ") and "HTTP 404" in err[-1]
    assert main(["data", "fetch", "nope"]) == 1
    assert "fetchable: fsdd" in capsys.readouterr().err
    assert main(["train", "--data", "esc50", "--model", "cnn", "--out", str(tmp_path / "x")]) == 1
    assert "run: snn-explorer data fetch esc50" in capsys.readouterr().err
