"""``snn-explorer data info`` and ``snn-explorer features`` on real files."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from app.cli import main


def make_folder(root, counts=(3, 5)):
    rng = np.random.default_rng(0)
    for c, n in enumerate(counts):
        d = root / f"class{c}"
        d.mkdir(parents=True)
        for i in range(n):
            y = (0.1 * rng.standard_normal(int(8000 * rng.uniform(0.3, 1.0)))).astype(np.float32)
            sf.write(d / f"{i}.wav", y, 8000, subtype="PCM_16")
    (root / "class1" / "bad.wav").write_text("not audio " * 20)
    return root


def test_data_info_folder_text_and_json(tmp_path, capsys):
    root = make_folder(tmp_path / "set")
    assert main(["data", "info", "--data", f"folder:{root}"]) == 0
    out = capsys.readouterr().out
    assert "classes    2" in out and "items      8" in out and "skipped    1" in out
    assert "bad.wav" in out and "training   train" in out
    assert main(["data", "info", "--data", f"folder:{root}", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [c["count"] for c in d["classes"]] == [3, 5] and d["n_skipped"] == 1
    assert d["splits"]["train"] + d["splits"]["val"] + d["splits"]["test"] == 8


def test_data_info_csv(tmp_path, capsys):
    root = make_folder(tmp_path / "set")
    (tmp_path / "m.csv").write_text("set/class0/0.wav,a,train\nset/class1/0.wav,b,test\n")
    assert main(["data", "info", "--data", f"csv:{tmp_path / 'm.csv'}", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_items"] == 2 and d["split_counts"] == {"train": 1, "test": 1}
    assert root.exists()


def test_data_info_fsdd_official_split(fsdd_dir, capsys):
    assert main(["data", "info", "--data", f"fsdd:{fsdd_dir}"]) == 0
    out = capsys.readouterr().out
    assert "classes    10" in out and "items      3000" in out
    assert "split      train 2700 / test 300 (from the source)" in out
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert len(rows) == 10 and all(r[1] == "300" for r in rows)


def test_data_info_mnist(mnist_dir, capsys):
    assert main(["data", "info", "--data", f"mnist:{mnist_dir}", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_items"] == 10000 and d["split_counts"] == {"train": 8000, "test": 2000}
    assert d["image_shape"] == [28, 28]


def test_bad_specs_print_one_line(tmp_path, capsys):
    for spec, text in [
        ("wav:/x", "unknown data set kind 'wav'"),
        (f"folder:{tmp_path}/absent", "no such file or folder"),
    ]:
        assert main(["data", "info", "--data", spec]) == 1
        err = capsys.readouterr().err
        assert text in err and err.count("\n") == 1 and "Traceback" not in err


def test_features_fills_cache_then_hits_it(tmp_path, capsys):
    root = make_folder(tmp_path / "set")
    cache = tmp_path / "cache"
    argv = ["features", "--data", f"folder:{root}", "--cache-dir", str(cache), "--jobs", "2"]
    assert main(argv + ["--n-mfcc", "13", "--hop-length", "100"]) == 0
    captured = capsys.readouterr()
    assert "8 examples x (1, 13, 81)" in captured.out and "0 from the cache" in captured.out
    assert "8/8 clips" in captured.err and "skipped: " in captured.err
    out_file = tmp_path / "fs.npz"
    assert main(argv + ["--n-mfcc", "13", "--hop-length", "100", "--out", str(out_file)]) == 0
    assert "8 from the cache" in capsys.readouterr().out
    with np.load(out_file) as z:
        assert (
            z["x"].shape == (8, 1, 13, 81) and json.loads(str(z["feature_config"]))["n_mfcc"] == 13
        )
    assert main(argv + ["--n-mfcc", "0"]) == 1
    assert "n_mfcc" in capsys.readouterr().err


def test_features_with_augmented_copies(tmp_path, capsys):
    root = make_folder(tmp_path / "set", counts=(10, 10))
    argv = ["features", "--data", f"folder:{root}", "--cache-dir", str(tmp_path / "c")]
    assert main(argv + ["--copies", "2", "--gain-db", "6", "--noise-snr", "20", "--quiet"]) == 0
    out = capsys.readouterr().out
    # 20 clips (16 train) + 2 copies of each training clip
    assert "52 examples" in out and "train 48" in out


def test_data_info_into_a_closed_pipe_ends_quietly(tmp_path):
    """``data info ... | head -0``: the reader is gone before the first line; no traceback."""
    import subprocess
    import sys
    from pathlib import Path

    root = make_folder(tmp_path / "set")
    cmd = [sys.executable, "-m", "app", "data", "info", "--data", f"folder:{root}"]
    proc = subprocess.Popen(
        cmd,
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # as `head` does when it has read enough
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
