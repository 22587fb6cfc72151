"""The AudioSet builder tab with real widgets: the shared CSVs, the tree, search, preview, and a
download from a media server on 127.0.0.1 (real yt-dlp and ffmpeg)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from mediaserver import MediaServer
from PySide6.QtCore import QSettings

from app.context import AppContext
from app.panels.builder import EMPTY_HINT, BuilderPanel
from engine import audioset


@pytest.fixture
def panel(qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    p = BuilderPanel(AppContext(settings))
    qtbot.addWidget(p)
    p.resize(1280, 800)
    p.show()
    yield p
    p.shutdown()


def wait_idle(qtbot, panel, timeout=30000):
    qtbot.waitUntil(lambda: not panel.is_busy(), timeout=timeout)


def test_empty_state_explains_what_to_load(panel):
    assert panel.message.text() == EMPTY_HINT
    assert "ontology.json" in EMPTY_HINT and audioset.OFFICIAL_FILES["ontology.json"] in EMPTY_HINT
    assert not panel.form.preview.isEnabled() and not panel.download.start.isEnabled()


def test_shared_csvs_tree_counts_search_and_preview(qtbot, panel, audioset_dir):
    csvs = [str(audioset_dir / n) for n in ("eval_segments.csv", "balanced_train_segments.csv")]
    panel.load_files(str(audioset_dir / "ontology.json"), csvs)
    wait_idle(qtbot, panel)
    onto = audioset.load_ontology(audioset_dir / "ontology.json")
    table = audioset.read_segments(csvs)
    counts = audioset.node_clip_counts(onto, table)
    tree = panel.tree
    # the top level: the ontology's roots with their clip counts, most clips first
    top = [
        (tree.proxy.index(r, 0).data(), tree.proxy.index(r, 1).data())
        for r in range(tree.proxy.rowCount())
    ]
    expected = sorted(((onto.name(n), counts[n]) for n in onto.roots), key=lambda t: -t[1])
    assert top == [(name, f"{n:,}") for name, n in expected]
    # search keeps the matches and the path down to them, nothing else
    tree.search.setText("dog")
    visible = set(tree.visible_ids())
    dogs = {nid for nid, node in onto.nodes.items() if "dog" in node.name.casefold()}
    assert dogs and dogs <= visible
    for nid in visible - dogs:  # everything else shown is an ancestor of a match
        assert onto.descendants(nid) & dogs
    assert len(visible) < 40
    tree.search.setText("")
    assert len(tree.visible_ids()) >= len(onto)

    # the default preview matches the engine; a class picked in the tree and an exclusion too
    sel = audioset.select(onto, table)
    cells = [panel.counts.table.item(1, c + 1).text() for c in range(3)]
    assert cells == [f"{n:,}" for n in sel.steps[1].counts]
    assert tree.select_id(onto.resolve("Vehicle"))
    assert "Sounds of things" in tree.details.text() and "Vehicle" in tree.details.text()
    tree.add_class.click()
    assert tree.select_id(onto.resolve("Speech"))
    tree.add_exclude.click()
    panel.form.classes.setCurrentRow(2)  # Sounds of things contains Vehicle: remove it
    panel.form.remove_class.click()
    assert panel.form.names(panel.form.classes) == ["Music", "Animal", "Vehicle"]
    panel.form.per_class.setValue(500)
    panel.form.preview.click()
    wait_idle(qtbot, panel)
    cfg = audioset.SelectionConfig(
        classes=("Music", "Animal", "Vehicle"), exclude=("Speech",), per_class=500
    )
    want = audioset.select(onto, table, cfg)
    assert panel.selection.counts == want.counts
    last = panel.counts.table.rowCount() - 1
    assert [panel.counts.table.item(last, c + 1).text() for c in range(3)] == [
        f"{n:,}" for n in want.counts
    ]
    bars = panel.counts.bars[1].opts["height"]  # the "no overlap" bars
    np.testing.assert_array_equal(bars, want.steps[1].counts)
    assert panel.cooc.table.item(0, 0).text() == "Music"


def _media_setup(tmp_path, names, served, seconds=2.0):
    media = tmp_path / "media"
    media.mkdir()
    t = np.arange(int(seconds * 22050)) / 22050
    for name in served:
        sf.write(
            media / f"{name}.flac", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050
        )
    onto = [
        {"id": "/t/a", "name": "Alpha", "child_ids": [], "restrictions": []},
        {"id": "/t/b", "name": "Beta", "child_ids": [], "restrictions": []},
    ]
    (tmp_path / "ontology.json").write_text(json.dumps(onto))
    header = "# a\n# b\n# YTID, start_seconds, end_seconds, positive_labels\n"
    rows = "".join(f'{n}, 0.000, 1.000, "/t/{"ab"[i % 2]}"\n' for i, n in enumerate(names))
    (tmp_path / "seg.csv").write_text(header + rows)
    return media


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_download_progress_failures_and_cancel(qtbot, panel, tmp_path):
    names = ["guiAAAAA001", "guiBBBBB002", "guiCCCCC003", "gone0000404"]
    media = _media_setup(tmp_path, names, served=names[:3])
    with MediaServer(media) as server:
        panel.load_files(str(tmp_path / "ontology.json"), [str(tmp_path / "seg.csv")])
        wait_idle(qtbot, panel)
        panel.form.set_config(audioset.SelectionConfig(classes=("Alpha", "Beta")))
        panel.preview()
        wait_idle(qtbot, panel)
        assert not panel.download.start.isEnabled()  # no output folder yet
        out = tmp_path / "out"
        panel.download.out_dir.setText(str(out))
        panel.download.url_template.setText(server.url("{ytid}.flac"))
        assert panel.download.start.isEnabled()
        panel.download.start.click()
        assert panel.download.cancel.isEnabled()
        wait_idle(qtbot, panel, timeout=60000)
    result = panel.download_result
    assert result.done == 3 and dict(result.failures) == {"http-404": 1}
    assert panel.download.progress.value() == panel.download.progress.maximum() == 4
    assert panel.download.failure_counts() == {"http-404": 1}
    assert len(list(out.glob("*/*.wav"))) == 3
    assert panel.download.use.isEnabled()
    with qtbot.waitSignal(panel.context.datasetChanged, timeout=2000):
        panel.download.use.click()
    assert panel.context.dataset_spec == f"audioset:{out}"

    # a slow server: Cancel ends the job and keeps the clips pending
    slow = tmp_path / "slow"
    slow.mkdir()
    shutil.copy(media / "guiAAAAA001.flac", slow / "guiAAAAA001.flac")
    for n in names[1:]:
        shutil.copy(media / "guiAAAAA001.flac", slow / f"{n}.flac")
    with MediaServer(slow, {f"{n}.flac": "delay:60" for n in names}) as server:
        panel.download.out_dir.setText(str(tmp_path / "out2"))
        panel.download.url_template.setText(server.url("{ytid}.flac"))
        panel.download.start.click()
        qtbot.waitUntil(lambda: len(server.paths_requested()) >= 2, timeout=30000)
        panel.download.cancel.click()
        wait_idle(qtbot, panel, timeout=10000)
    assert panel.download_result.cancelled and panel.download_result.pending == 4
    assert "Cancelled" in panel.download.counts.text()
    assert not panel.download.cancel.isEnabled() and panel.download.start.isEnabled()


def test_settings_roundtrip_reloads_files_and_choices(qtbot, tmp_path):
    _media_setup(tmp_path, ["setAAAAA001", "setBBBBB002"], served=[])
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    first = BuilderPanel(AppContext(settings))
    qtbot.addWidget(first)
    first.load_files(str(tmp_path / "ontology.json"), [str(tmp_path / "seg.csv")])
    wait_idle(qtbot, first)
    cfg = audioset.SelectionConfig(classes=("Beta", "Alpha"), per_class=1, seed=7)
    first.form.set_config(cfg)
    first.download.out_dir.setText(str(tmp_path / "out"))
    first.download.jobs.setValue(3)
    settings.beginGroup("builder")
    first.save_state(settings)
    settings.endGroup()
    first.shutdown()
    second = BuilderPanel(AppContext(settings))
    qtbot.addWidget(second)
    settings.beginGroup("builder")
    second.restore_state(settings)
    settings.endGroup()
    wait_idle(qtbot, second)
    assert second.form.config() == cfg and second.download.jobs.value() == 3
    assert second.selection is not None and second.selection.counts == (1, 1)
    assert second.download.start.isEnabled()
    second.shutdown()
