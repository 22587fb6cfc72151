"""engine.audioset.selection: ontology, segment CSVs, class selection and filters, manifest.

The real-data tests check ``select`` against an independent computation written here with plain
``json``/string code (recursive descendants, per-clip label sets), on the shared eval and
balanced-train CSVs.
"""

from __future__ import annotations

import functools
import json

import pytest

from engine import audioset
from engine.audioset.selection import SelectionConfig, load_ontology, read_segments, select
from engine.errors import ConfigError, DataError

CSV_NAMES = ("eval_segments.csv", "balanced_train_segments.csv")
DEFAULT = ("Music", "Animal", "Sounds of things")


# ----------------------------------------------------------------------------- independent code
def plain_ontology(path):
    nodes = json.loads(path.read_text())
    return {n["id"]: n for n in nodes}


def plain_subtree(nodes, node_id, skip=()):
    """Recursive walk (the engine walks iteratively); ``skip`` restrictions drop nodes' own ids."""
    out = set()

    def walk(nid):
        if nid in out or nid not in nodes:
            return
        out.add(nid)
        for kid in nodes[nid]["child_ids"]:
            walk(kid)

    walk(node_id)
    return {n for n in out if not set(nodes[n].get("restrictions", [])) & set(skip)}


def plain_rows(*paths):
    """(ytid, start, end, labels) per data line, parsed by splitting strings."""
    rows = []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            head, quoted = line.split(', "', 1)
            ytid, start, end = (v.strip() for v in head.split(","))
            rows.append((ytid, float(start), float(end), set(quoted.rstrip('"').split(","))))
    return rows


def plain_selection(nodes, rows, names, skip=()):
    by_name = {n["name"]: i for i, n in nodes.items()}
    trees = [plain_subtree(nodes, by_name[n], skip) for n in names]
    labelled = [0] * len(names)
    single = [set() for _ in names]
    for ytid, start, _end, labels in rows:
        hits = [c for c, tree in enumerate(trees) if labels & tree]
        for c in hits:
            labelled[c] += 1
        if len(hits) == 1:
            single[hits[0]].add((ytid, round(start * 1000)))
    return labelled, single


@functools.lru_cache(maxsize=1)
def _load_real(d):
    return load_ontology(d / "ontology.json"), read_segments([d / n for n in CSV_NAMES])


@pytest.fixture
def real(audioset_dir):
    onto, table = _load_real(audioset_dir)  # parsed once for the module's tests
    return audioset_dir, onto, table


# ----------------------------------------------------------------------------- real data
def test_real_csvs_parse_completely(real):
    d, _onto, table = real
    declared = 0
    for name in CSV_NAMES:
        header = (d / name).read_text().splitlines()[1]
        declared += int(header.split("num_segs=")[1].split(",")[0])
    assert len(table) == declared  # every row the files declare, none malformed
    assert table.malformed_count == 0 and table.duplicates == 0
    assert table.sources == ("eval", "balanced_train")
    first = table.labels(0)
    assert first == ("/m/068hy", "/m/07q6cd_", "/m/0bt9lr", "/m/0jbk")  # a quoted label list


def test_real_ontology(real):
    d, onto, _ = real
    nodes = plain_ontology(d / "ontology.json")
    assert len(onto) == len(nodes) and not onto.problems
    kids = {k for n in nodes.values() for k in n["child_ids"]}
    assert set(onto.roots) == {i for i in nodes if i not in kids}
    dog = onto.resolve("dog")
    assert onto.path(dog).startswith("Animal > ")
    for name in DEFAULT + ("Speech", "Vehicle"):
        nid = onto.resolve(name)
        assert onto.descendants(nid) == plain_subtree(nodes, nid)


def test_default_classes_match_independent_count(real):
    d, onto, table = real
    nodes = plain_ontology(d / "ontology.json")
    rows = plain_rows(*(d / n for n in CSV_NAMES))
    labelled, single = plain_selection(nodes, rows, DEFAULT)
    sel = select(onto, table)  # the defaults are the report's three classes
    assert sel.class_names == DEFAULT
    assert list(sel.steps[0].counts) == labelled
    assert list(sel.steps[1].counts) == [len(s) for s in single]
    assert sel.counts == sel.steps[1].counts  # no other filter is on by default
    got = [set() for _ in DEFAULT]
    for clip in sel.clips:
        got[clip.class_index].add((clip.ytid, round(clip.start * 1000)))
    assert got == single
    # every clip of two or three classes left, and no clip sits in two classes
    anywhere = set().union(*(plain_subtree(nodes, onto.resolve(n)) for n in DEFAULT))
    outside = sum(1 for _y, _s, _e, labels in rows if not labels & anywhere)
    assert sel.overlap_removed == len(rows) - sum(len(s) for s in single) - outside
    print("labelled", labelled, "after overlap removal", [len(s) for s in single])


def test_filters_match_independent_count(real):
    d, onto, table = real
    nodes = plain_ontology(d / "ontology.json")
    rows = plain_rows(*(d / n for n in CSV_NAMES))
    skip = ("abstract", "blacklist")
    cfg = SelectionConfig(exclude=("Speech",), min_length=9.5, skip_restricted=skip)
    sel = select(onto, table, cfg)
    labelled, single = plain_selection(nodes, rows, DEFAULT, skip=skip)
    speech = plain_subtree(nodes, onto.resolve("Speech"))
    keep_rows = {(y, round(s * 1000)) for y, s, e, labels in rows if not labels & speech}
    long_rows = {(y, round(s * 1000)) for y, s, e, _ in rows if e - s >= 9.5}
    assert list(sel.steps[0].counts) == labelled
    assert list(sel.steps[2].counts) == [len(s & keep_rows) for s in single]
    assert list(sel.counts) == [len(s & keep_rows & long_rows) for s in single]
    assert all(step.active for step in sel.steps[:4])
    for clip in sel.clips:
        assert not set(clip.labels) & speech and clip.duration >= 9.5


def test_cap_balance_and_seed(real):
    _d, onto, table = real
    base = select(onto, table)
    capped = select(onto, table, SelectionConfig(per_class=50, seed=1))
    assert capped.counts == (50, 50, 50)
    same = select(onto, table, SelectionConfig(per_class=50, seed=1))
    other = select(onto, table, SelectionConfig(per_class=50, seed=2))
    assert [c.key for c in capped.clips] == [c.key for c in same.clips]
    assert [c.key for c in capped.clips] != [c.key for c in other.clips]
    base_keys = {(c.key, c.class_index) for c in base.clips}
    assert {(c.key, c.class_index) for c in capped.clips} <= base_keys
    balanced = select(onto, table, SelectionConfig(balance=True))
    assert set(balanced.counts) == {min(base.counts)}
    both = select(onto, table, SelectionConfig(balance=True, per_class=10**6))
    assert both.counts == balanced.counts


def test_cooccurring_labels_are_outside_the_class(real):
    _d, onto, table = real
    sel = select(onto, table)
    for c, cid in enumerate(sel.class_ids):
        tree = {onto.name(n) for n in onto.descendants(cid)}
        assert sel.cooccurring[c], "real clips carry other labels"
        assert not {name for name, _ in sel.cooccurring[c]} & tree
        counts = [n for _, n in sel.cooccurring[c]]
        assert counts == sorted(counts, reverse=True)
    text = audioset.format_preview(sel)
    for name in DEFAULT + ("labelled", "no overlap", "overlaps removed"):
        assert name in text


def test_node_counts_match_independent_count(real):
    d, onto, table = real
    nodes = plain_ontology(d / "ontology.json")
    rows = plain_rows(*(d / n for n in CSV_NAMES))
    counts = audioset.node_clip_counts(onto, table)
    for name in ("Music", "Animal", "Dog", "Speech", "Vehicle", "Human sounds"):
        nid = onto.resolve(name)
        tree = plain_subtree(nodes, nid)
        assert counts[nid] == sum(1 for *_, labels in rows if labels & tree), name


# ----------------------------------------------------------------------------- small files
HEADER = (
    "# Segments csv created today\n# num_ytids=9, num_segs=9\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)


def tiny_ontology(tmp_path, extra=()):
    nodes = [
        {"id": "/t/a", "name": "Alpha", "child_ids": ["/t/a1", "/t/gone"], "restrictions": []},
        {"id": "/t/a1", "name": "Alpha one", "child_ids": [], "restrictions": ["blacklist"]},
        {"id": "/t/b", "name": "Beta", "child_ids": ["/t/b1"], "restrictions": []},
        {"id": "/t/b1", "name": "Beta one", "child_ids": ["/t/b2"], "restrictions": []},
        {"id": "/t/b2", "name": "Beta two", "child_ids": ["/t/b1"], "restrictions": []},  # cycle
        {"id": "/t/n", "name": "Noise", "child_ids": [], "restrictions": []},
        *extra,
    ]
    path = tmp_path / "ontology.json"
    path.write_text(json.dumps(nodes))
    return path


def test_malformed_rows_are_counted_not_fatal(tmp_path):
    path = tmp_path / "seg.csv"
    path.write_text(
        HEADER
        + 'aaaaaaaaaaa, 0.000, 10.000, "/t/a,/t/n"\n'
        + "bbbbbbbbbbb, 0.000, 10.000\n"  # 3 fields
        + 'ccccccccccc, x, 10.000, "/t/a"\n'  # not a number
        + 'bad id here, 0.000, 10.000, "/t/a"\n'  # not an 11-character id
        + 'ddddddddddd, 5.000, 5.000, "/t/a"\n'  # empty segment
        + 'eeeeeeeeeee, 0.000, 4.000, ""\n'  # no labels
        + 'f-_FFFFFFF9, 1.500, 9.000, "/t/b2"\n'
    )
    table = read_segments(path)
    assert len(table) == 2 and table.malformed_count == 5
    assert [line for _f, line, _why in table.malformed] == [5, 6, 7, 8, 9]
    assert "4 fields" in table.malformed[0][2] and "YouTube ID" in table.malformed[2][2]
    assert table.labels(0) == ("/t/a", "/t/n") and table.start[1] == 1.5


def test_duplicates_across_files_kept_once(tmp_path):
    a, b = tmp_path / "one.csv", tmp_path / "two.csv"
    a.write_text(HEADER + 'aaaaaaaaaaa, 0.000, 10.000, "/t/a"\n')
    b.write_text(HEADER + 'aaaaaaaaaaa, 0.000, 10.000, "/t/a"\nbbbbbbbbbbb, 0.0, 10.0, "/t/b"\n')
    table = read_segments([a, b])
    assert len(table) == 2 and table.duplicates == 1


def test_ontology_cycles_and_missing_ids(tmp_path):
    onto = load_ontology(tiny_ontology(tmp_path))
    assert onto.descendants("/t/b") == {"/t/b", "/t/b1", "/t/b2"}  # the cycle ends the walk
    assert onto.descendants("/t/a") == {"/t/a", "/t/a1"}  # the missing child is ignored
    assert onto.descendants("/t/a", skip=("blacklist",)) == {"/t/a"}
    assert any("/t/gone" in p for p in onto.problems)
    assert onto.resolve("alpha ONE") == "/t/a1" and onto.resolve("/t/n") == "/t/n"
    with pytest.raises(ConfigError, match="Alpha"):
        onto.resolve("Alpah")


def test_selection_on_tiny_data(tmp_path):
    onto = load_ontology(tiny_ontology(tmp_path))
    path = tmp_path / "seg.csv"
    path.write_text(
        HEADER
        + 'aaaaaaaaaaa, 0.000, 10.000, "/t/a,/t/n"\n'  # Alpha, noisy
        + 'bbbbbbbbbbb, 0.000, 10.000, "/t/a1"\n'  # Alpha via a blacklisted child
        + 'ccccccccccc, 0.000, 10.000, "/t/b2,/t/a"\n'  # both: dropped
        + 'ddddddddddd, 0.000, 3.000, "/t/b1"\n'  # Beta, short
        + 'eeeeeeeeeee, 0.000, 10.000, "/t/b"\n'  # Beta
        + 'fffffffffff, 0.000, 10.000, "/t/n"\n'  # neither
        + 'ggggggggggg, 0.000, 10.000, "/t/zzz,/t/b2"\n'  # Beta, with an unknown label
    )
    table = read_segments(path)
    sel = select(onto, table, SelectionConfig(classes=("Alpha", "Beta")))
    assert [s.counts for s in sel.steps[:2]] == [(3, 4), (2, 3)]
    assert sel.overlaps == ((0, 1, 1),) and sel.unknown_labels == ("/t/zzz",)
    assert sel.cooccurring[0] == (("Noise", 1),)
    cfg = SelectionConfig(
        classes=("Alpha", "/t/b"), exclude=("Noise",), min_length=5, skip_restricted=("blacklist",)
    )
    sel = select(onto, table, cfg)
    assert [s.counts for s in sel.steps] == [(2, 4), (1, 3), (0, 3), (0, 2), (0, 2)]
    assert [c.ytid for c in sel.clips] == ["eeeeeeeeeee", "ggggggggggg"]


def test_bad_configs(tmp_path):
    onto = load_ontology(tiny_ontology(tmp_path))
    table = read_segments([])
    with pytest.raises(ConfigError, match="inside"):
        select(onto, table, SelectionConfig(classes=("Beta", "Beta two")))
    with pytest.raises(ConfigError, match="exclude"):
        select(onto, table, SelectionConfig(classes=("Alpha", "Beta"), exclude=("Nope",)))
    for bad in (
        {"classes": ("Alpha",)},
        {"per_class": 0},
        {"min_length": -1},
        {"format": "mp3"},
        {"skip_restricted": ("odd",)},
    ):
        with pytest.raises(ConfigError):
            SelectionConfig(**bad)
    cfg = SelectionConfig(classes=("Alpha", " Beta"), per_class=3)
    assert cfg.classes == ("Alpha", "Beta")
    assert SelectionConfig.from_dict(cfg.to_dict() | {"unknown": 1}) == cfg


def test_split_names_keeps_names_with_commas(real):
    _d, onto, _ = real
    split = audioset.split_names
    assert split("Music, Domestic animals, pets,Vehicle", onto) == (
        "Music",
        "Domestic animals, pets",
        "Vehicle",
    )
    assert split("livestock, farm animals, working animals", onto) == (
        "livestock, farm animals, working animals",
    )
    assert split("/m/04rlf,Nope, Animal", onto) == ("/m/04rlf", "Nope", "Animal")
    assert split("", onto) == ()


def test_manifest_roundtrip(tmp_path):
    onto = load_ontology(tiny_ontology(tmp_path))
    eval_csv, train_csv = tmp_path / "eval_segments.csv", tmp_path / "balanced_train_segments.csv"
    eval_csv.write_text(HEADER + 'aaaaaaaaaaa, 2.500, 10.000, "/t/a"\n')
    train_csv.write_text(HEADER + 'bbbbbbbbbbb, 0.0, 10.0, "/t/b"\n-bbbbbbbbbb, 1, 2, "/t/a"\n')
    sel = select(
        onto,
        read_segments([eval_csv, train_csv]),
        SelectionConfig(classes=("Beta", "Alpha"), format="flac"),
    )
    path = audioset.write_manifest(sel, tmp_path / "out")
    rows, classes = audioset.read_manifest(tmp_path / "out")
    assert classes == ["Beta", "Alpha"]
    assert [(r.ytid, r.start, r.end, r.class_name, r.split) for r in rows] == [
        ("bbbbbbbbbbb", 0.0, 10.0, "Beta", "train"),
        ("aaaaaaaaaaa", 2.5, 10.0, "Alpha", "test"),
        ("-bbbbbbbbbb", 1.0, 2.0, "Alpha", "train"),
    ]
    assert [r.file for r in rows] == [
        "Beta/bbbbbbbbbbb_0.flac",
        "Alpha/aaaaaaaaaaa_2500.flac",
        "Alpha/-bbbbbbbbbb_1000.flac",
    ]
    meta = json.loads((tmp_path / "out" / "selection.json").read_text())
    assert meta["class_names"] == ["Beta", "Alpha"] and meta["config"]["format"] == "flac"
    # a hand-edited manifest cannot send files outside the folder
    text = path.read_text().replace("aaaaaaaaaaa,aaaaaaaaaaa", "../../../x,../../../x")
    path.write_text(text)
    rows, _ = audioset.read_manifest(path)
    assert all(".." not in r.file and r.file.count("/") == 1 for r in rows)
    with pytest.raises(DataError, match="manifest"):
        audioset.read_manifest(eval_csv)


def test_missing_official_file_says_what_to_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN_EXPLORER_OFFLINE", "1")
    monkeypatch.setenv("SNN_EXPLORER_CACHE", str(tmp_path / "cache"))  # this test's own cache
    with pytest.raises(DataError) as err:
        audioset.resolve_input("eval")
    msg = str(err.value)
    assert "\n" not in msg and audioset.OFFICIAL_FILES["eval_segments.csv"] in msg
    assert "eval_segments.csv" in msg and "cache" in msg
    with pytest.raises(DataError, match="no such file"):
        audioset.resolve_input(tmp_path / "mine.csv")
    # a copy in the cache is used without any network
    from engine.paths import cache_dir

    (cache_dir("audioset") / "ontology.json").write_text("[]")
    assert audioset.resolve_input("ontology") == cache_dir("audioset") / "ontology.json"
    assert audioset.resolve_input("/elsewhere/ontology.json").parent == cache_dir("audioset")


def test_open_output_reads_downloaded_clips(tmp_path):
    import numpy as np
    import soundfile as sf

    from engine.data.specs import open_source, split_indices

    onto = load_ontology(tiny_ontology(tmp_path))
    eval_csv, train_csv = tmp_path / "eval_segments.csv", tmp_path / "balanced_train_segments.csv"
    eval_csv.write_text(HEADER + 'aaaaaaaaaaa, 0, 1, "/t/a"\nbbbbbbbbbbb, 0, 1, "/t/b"\n')
    rows = "".join(f'{c * 11}, 0, 1, "/t/{"ab"[i % 2]}"\n' for i, c in enumerate("cdefgh"))
    train_csv.write_text(HEADER + rows + 'nnnnnnnnnnn, 0, 1, "/t/n"\n')
    sel = select(
        onto, read_segments([eval_csv, train_csv]), SelectionConfig(classes=("Beta", "Alpha"))
    )
    out = tmp_path / "out"
    audioset.write_manifest(sel, out)
    with pytest.raises(DataError, match="none of the 8 clips"):
        open_source(f"audioset:{out}")
    manifest, _ = audioset.read_manifest(out)
    tone = np.sin(np.arange(8000) / 3).astype(np.float32)
    for row in manifest:
        (out / row.file).parent.mkdir(exist_ok=True)
        sf.write(out / row.file, tone, 8000)
    src = open_source(f"audioset:{out}")
    assert src.spec == f"audioset:{out}" and src.class_names == ["Beta", "Alpha"]
    assert len(src.items) == 8 and not src.skipped
    assert {
        (it.group, it.split) for it in src.items if it.group in ("aaaaaaaaaaa", "ccccccccccc")
    } == {
        ("aaaaaaaaaaa", "test"),
        ("ccccccccccc", "train"),
    }
    assert len(split_indices(src)["test"]) == 2
    assert src.load(0).shape == (8000,) and src.sample_rate(0) == 8000
    # only the train clips of Beta left: no eval side, no Alpha
    for row in manifest:
        if row.class_name == "Alpha" or row.split == "test":
            (out / row.file).unlink()
    src = open_source(f"audioset:{out}")
    assert src.class_names == ["Beta"] and {it.split for it in src.items} == {None}
    assert len(src.skipped) == 5 and all(why == "not downloaded" for _, why in src.skipped)
