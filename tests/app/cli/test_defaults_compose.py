"""Issue 25, item 5: every default works with every option.

A small slice of each kind of set the recipe knows (1-s 8-kHz clips: MFCCs and ``csnn``; 5-s
22,050-Hz clips: log-mel, crops and ``scnn_gap``), written here as a user's folder of WAVs.
Each recommended model trains in 1 process and in 2 (``--nproc 2``: torchrun, gloo on the CPU),
with the recipe on (mixup, label smoothing, SpecAugment, crops, small-set sizing and trimming:
all of it) and off; then ``--cv``, ``--twin`` with ``--nproc 2``, ``--resume`` and a sweep trial
whose base is a recipe run's own ``config.toml``. Every run ends in a run folder that
``classify`` reads.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from app.cli import main
from engine.train.config import tomllib
from engine.train.run_folder import read_run

#: (seconds, rate) of each kind of set and the spiking model the recipe recommends for it
SETS = {"speech": (1.0, 8000, "csnn"), "scenes": (5.0, 22_050, "scnn_gap")}
PER_CLASS = 8


def _write_set(folder, seconds: float, rate: int) -> list:
    """Three classes of tones (a sound in the middle of a quiet clip), PER_CLASS clips each."""
    t = np.arange(int(0.4 * rate)) / rate
    rng = np.random.default_rng(0)
    files = []
    for c, f0 in (("low", 300), ("mid", 900), ("high", 2400)):
        (folder / c).mkdir(parents=True)
        for i in range(PER_CLASS):
            y = 0.002 * rng.standard_normal(int(seconds * rate))
            at = int(rng.uniform(0.05, 0.5) * len(y))
            y[at : at + len(t)] += 0.4 * np.sin(2 * np.pi * (f0 + 15 * i) * t)
            sf.write(folder / c / f"{i}.wav", y.astype(np.float32), rate, subtype="PCM_16")
            files.append(folder / c / f"{i}.wav")
    return files


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("own-sets")
    return {k: (root / k, _write_set(root / k, s, r)) for k, (s, r, _) in SETS.items()}


def _classify_reads(run, files, capsys) -> None:
    """``classify`` reads the run's best.pt and answers for every file."""
    capsys.readouterr()
    assert main(["classify", "--checkpoint", str(run / "best.pt"), "--json", *map(str, files)]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert [a["file"] for a in answers] == [str(f) for f in files]
    assert all(a["label"] in ("low", "mid", "high", "unknown") for a in answers)


def _config(run) -> dict:
    return tomllib.loads((run / "config.toml").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["on", "off"])
@pytest.mark.parametrize("nproc", [1, 2])
@pytest.mark.parametrize("kind", sorted(SETS))
def test_each_recommended_model_trains_in_one_and_two_processes_recipe_on_and_off(
    sets, kind, nproc, recipe, tmp_path, capfd
):
    folder, files = sets[kind]
    model = SETS[kind][2]
    run = tmp_path / "run"
    argv = ["train", "--data", f"folder:{folder}", "--out", str(run), "--epochs", "2"]
    argv += ["--nproc", str(nproc)] if nproc > 1 else []
    argv += [] if recipe == "on" else ["--recipe", "off", "--model", model]
    assert main(argv) == 0
    said = capfd.readouterr()  # the ranks' output too (file descriptors, not sys.stdout)
    assert said.err.count("recipe: ") == (recipe == "on")  # once per job, not once per rank
    assert said.out.count(f"run folder {run}") == 1  # one summary
    cfg = _config(run)
    assert cfg["model"] == model and cfg["epochs"] == 2
    if recipe == "on":  # the whole recipe ran, mixup included, in every process
        assert cfg["mixup"] > 0 and cfg["label_smoothing"] > 0 and cfg["select"] == "last"
        assert cfg["batch"] == 8 and cfg["augment"]["spec_masks"] == 2
        long_clips = kind == "scenes"
        assert (cfg["crop_s"] > 0) == long_clips and cfg["features"]["trim_silence"] != long_clips
    else:
        assert cfg["mixup"] == 0 and cfg["batch"] == 64
    r = read_run(run)
    assert [h["epoch"] for h in r.history] == [1, 2]
    assert len([e for e in r.events if e.get("event") == "RunStarted"]) == 1  # one job, one run
    _classify_reads(run, files[::5], capfd)


@pytest.mark.slow
def test_cv_twin_resume_and_a_sweep_trial_compose_with_the_recipe(sets, tmp_path, capsys):
    folder, files = sets["speech"]
    spec = f"folder:{folder}"
    # --cv: every fold a recipe run classify reads
    cv = tmp_path / "cv"
    assert main(["train", "--data", spec, "--out", str(cv), "--cv", "2", "--epochs", "2"]) == 0
    summary = json.loads((cv / "cv_summary.json").read_text())
    assert len(summary["folds"]) == 2
    for fold in ("fold-1", "fold-2"):
        assert _config(cv / fold)["mixup"] > 0
        _classify_reads(cv / fold, files[:2], capsys)
    # --twin in two processes: the twin of the recommended model, the same recipe
    twin = tmp_path / "twin"
    argv = ["train", "--data", f"folder:{sets['scenes'][0]}", "--out", str(twin), "--twin"]
    assert main([*argv, "--epochs", "2", "--nproc", "2", "--quiet"]) == 0
    assert _config(twin)["model"] == "cnn_gap" and _config(twin)["crop_s"] > 0
    _classify_reads(twin, sets["scenes"][1][:2], capsys)
    # --resume of a recipe run: it keeps the recipe's settings and goes on to more epochs
    run = tmp_path / "resumed"
    assert main(["train", "--data", spec, "--out", str(run), "--epochs", "1", "--quiet"]) == 0
    first = _config(run)
    assert main(["train", "--out", str(run), "--resume", "--epochs", "3", "--quiet"]) == 0
    again = _config(run)
    assert {k: v for k, v in again.items() if k != "epochs"} == {
        k: v for k, v in first.items() if k != "epochs"
    }
    assert [h["epoch"] for h in read_run(run).history] == [1, 2, 3]
    _classify_reads(run, files[:2], capsys)
    # a sweep whose base is that run's config.toml (the recipe's settings, as written)
    space = tmp_path / "space.toml"
    space.write_text("lr = {low = 1e-3, high = 1e-2, log = true}\n")
    sweep = tmp_path / "sweep"
    argv = ["sweep", "--config", str(run / "config.toml"), "--space", str(space)]
    assert main([*argv, "--trials", "1", "--out", str(sweep), "--quiet"]) == 0
    trial = sweep / "trial-0000"
    assert _config(trial)["mixup"] == first["mixup"] and _config(trial)["select"] == "last"
    _classify_reads(trial, files[:2], capsys)
