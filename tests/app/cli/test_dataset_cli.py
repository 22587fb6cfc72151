"""``snn-explorer dataset audioset`` in-process: the preview on the shared CSVs, and the one-line
errors (a missing official file while offline, an unknown class)."""

from __future__ import annotations

import csv

from app.cli import main
from engine import audioset


def test_preview_prints_counts_and_writes_manifest(audioset_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["dataset", "audioset", "--ontology", str(audioset_dir / "ontology.json")]
    for name in ("eval_segments.csv", "balanced_train_segments.csv"):
        args += ["--segments", str(audioset_dir / name)]
    args += ["--out", str(out), "--exclude", "Speech", "--per-class", "40", "--seed", "3"]
    assert main(args) == 0
    text = capsys.readouterr().out
    onto = audioset.load_ontology(audioset_dir / "ontology.json")
    table = audioset.read_segments(
        [audioset_dir / n for n in ("eval_segments.csv", "balanced_train_segments.csv")]
    )
    sel = audioset.select(
        onto, table, audioset.SelectionConfig(exclude=("Speech",), per_class=40, seed=3)
    )
    for step in sel.steps:  # every step's line carries its counts
        line = next(x for x in text.splitlines() if x.startswith(step.name))
        assert [f"{n:,}" for n in step.counts] == line[len(step.name) :].split()[:3]
    assert "overlaps removed" in text and "co-occurring" in text
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 120 and {r["label"] for r in rows} == set(audioset.DEFAULT_CLASSES)
    assert [(r["ytid"], float(r["start_seconds"])) for r in rows] == [
        (c.ytid, c.start) for c in sel.clips
    ]


def test_errors_are_one_line(tmp_path, capsys, monkeypatch, audioset_dir):
    monkeypatch.setenv("SNN_EXPLORER_OFFLINE", "1")
    monkeypatch.setenv("SNN_EXPLORER_CACHE", str(tmp_path / "cache"))  # an empty cache
    assert main(["dataset", "audioset", "--segments", "eval", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "download http" in err and "ontology.json" in err
    args = ["dataset", "audioset", "--ontology", str(audioset_dir / "ontology.json")]
    args += ["--segments", str(audioset_dir / "eval_segments.csv"), "--out", str(tmp_path)]
    assert main([*args, "--classes", "Musik,Animal"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'Music'" in err
