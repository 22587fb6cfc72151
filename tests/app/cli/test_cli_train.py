"""``snn-explorer train`` and ``classify`` as a user runs them (in-process, real data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main


def _train(tmp_path, fsdd_dir, name="run", *extra):
    out = tmp_path / name
    argv = ["train", "--data", f"fsdd:{fsdd_dir}", "--model", "csnn", "--out", str(out)]
    argv += ["--steps", "4", "--epochs", "1", "--limit", "300", "--batch", "32", *extra]
    return out, main(argv)


def test_train_writes_the_run_folder_and_classify_reads_it(tmp_path, fsdd_dir, capsys):
    out, rc = _train(tmp_path, fsdd_dir)
    assert rc == 0
    captured = capsys.readouterr()
    assert "epoch 1/1" in captured.err and "test acc" in captured.out
    for name in ("config.toml", "metrics.json", "checkpoint.pt", "best.pt", "events.jsonl"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == [str(i) for i in range(10)]
    assert len(metrics["history"]) == 1 and 0 <= metrics["test"]["accuracy"] <= 1
    assert np.asarray(metrics["test"]["confusion"]).shape == (10, 10)

    wavs = [str(fsdd_dir / "3_jackson_0.wav"), str(fsdd_dir / "8_theo_1.wav")]
    # a one-epoch model is unsure: --threshold 0 always names a class (see test_unknown.py)
    argv = ["classify", "--checkpoint", str(out / "best.pt"), *wavs, "--json", "--threshold", "0"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in rows] == wavs
    for r in rows:
        assert r["label"] in metrics["class_names"]
        assert sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-4)
        assert set(r["spike_counts"]) == set(metrics["class_names"])
    assert main(["classify", "--checkpoint", str(out / "best.pt"), wavs[0]]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{wavs[0]}: ") and line.count("(") == 1

    # a file that is not audio: one line, the others still classified, exit code 1
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    assert main(["classify", "--checkpoint", str(out / "best.pt"), str(bad), wavs[0]]) == 1
    captured = capsys.readouterr()
    # one line for the bad file (besides the note a one-epoch model at chance gets)
    errors = [line for line in captured.err.splitlines() if ": note: " not in line]
    assert len(errors) == 1 and "notes.wav" in errors[0]
    assert captured.out.startswith(wavs[0])

    # the same folder again without --resume is refused; --resume with more epochs continues
    assert _train(tmp_path, fsdd_dir)[1] == 1
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2"]) == 0
    assert "resuming csnn" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]


def test_config_file_and_overrides(tmp_path, fsdd_dir, capsys):
    cfg = tmp_path / "my.toml"
    cfg.write_text(
        f'data = "fsdd:{fsdd_dir}"\nmodel = "cnn"\nepochs = 3\nlimit = 200\n'
        "[model_options]\nchannels = [4, 8]\nkernels = [3, 3]\n"
    )
    out = tmp_path / "cfg-run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--epochs", "1"]) == 0
    saved = (out / "config.toml").read_text()
    assert 'model = "cnn"' in saved and "epochs = 1" in saved and "channels = [" in saved
    assert json.loads((out / "metrics.json").read_text())["params"] < 5000


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["train", "--out", "X", "--model", "lenet"], 2, "invalid choice: 'lenet'"),
        (["train", "--out", "X"], 1, "--data is required"),
        (["train", "--out", "X", "--resume"], 1, "no such checkpoint file"),
        (["train", "--data", "fsdd:/nonexistent/folder", "--out", "X"], 1, "/nonexistent/folder"),
        (["classify", "--checkpoint", "missing.pt", "a.wav"], 1, "no such checkpoint"),
    ],
)
def test_mistakes_give_one_line_errors(tmp_path, monkeypatch, capsys, argv, code, message):
    monkeypatch.chdir(tmp_path)
    if code == 2:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    else:
        assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and err.strip().count("\n") == 0, err


def test_a_toml_with_a_typo_is_named(tmp_path, capsys):
    cfg = tmp_path / "typo.toml"
    cfg.write_text('modle = "csnn"\n')
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "typo.toml: unknown key 'modle'" in err and err.count("\n") == 1


def test_classify_an_image_with_an_mnist_model(tmp_path, mnist_dir, capsys):
    from PIL import Image

    from engine.data.specs import open_source

    out = tmp_path / "mnist"
    argv = ["train", "--data", f"mnist:{mnist_dir}", "--model", "cnn", "--out", str(out)]
    assert main([*argv, "--epochs", "2", "--limit", "1500"]) == 0
    source = open_source(f"mnist:{mnist_dir}")
    files = []
    for i in range(9990, 10000):
        img = (source.load(i) * 255).astype(np.uint8)
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(img).save(path)
        files.append((str(path), source.class_names[source.items[i].label]))
    capsys.readouterr()
    assert (
        main(["classify", "--checkpoint", str(out / "best.pt"), "--json", *[f for f, _ in files]])
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    hits = sum(r["label"] == truth for r, (_, truth) in zip(rows, files))
    assert hits >= 6  # 10 held-out digits after a short training; chance is 1
