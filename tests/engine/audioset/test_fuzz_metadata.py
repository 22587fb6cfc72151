"""Fuzzing the metadata readers with bad input: CSV manifests, AudioSet segment CSVs and
ontology JSON, MNIST IDX files and ``mnist:`` folders. Each case ends in a one-line SnnError
naming the file, or in a usable result. ``tally`` counts the inputs tried.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from fuzzkit import fuzz, one_line, tone, wav_bytes
from hypothesis import given
from hypothesis import strategies as st

from engine import audioset
from engine.data.idx import read_idx
from engine.data.specs import open_source
from engine.errors import SnnError

GOOD_WAV = wav_bytes(tone())


# ----------------------------------------------------------------------------- CSV manifests
@pytest.fixture(scope="module")
def csv_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("csvset") / "in"  # manifests live here; ../ leaves it
    for c in ("a", "b"):
        (root / "clips" / c).mkdir(parents=True)
        for i in range(2):
            (root / "clips" / c / f"{i}.wav").write_bytes(wav_bytes(tone(seed=i)))
    (root.parent / "outside.wav").write_bytes(GOOD_WAV)
    (root / "clips" / "empty.wav").write_bytes(b"")
    return root


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def check_manifest(path: Path) -> str:
    try:
        src = open_source(f"csv:{path}")
    except SnnError as exc:
        one_line(exc, path)
        return "error"
    assert src.items and len(set(src.class_names)) == len(src.class_names)
    for it in src.items:
        assert os.path.isfile(it.path) and 0 <= it.label < len(src.class_names)
        assert it.split in (None, "train", "val", "test")
    for _p, reason in src.skipped:
        assert reason and "\n" not in reason
    return "ok"


CSV_CASES = {
    "empty": ("", "error"),
    "header only": ("path,label\n", "error"),
    "no label column": ("path,kind\nclips/a/0.wav,x\n", "error"),
    "one column": ("clips/a/0.wav\n", "error"),
    "BOM + header": ("\ufeffpath,label\nclips/a/0.wav,a\nclips/b/0.wav,b\n", "ok"),
    "CRLF": ("path,label\r\nclips/a/0.wav,a\r\nclips/b/0.wav,b\r\n", "ok"),
    "quoted labels with commas and quotes": (
        'path,label\n"clips/a/0.wav","dog, big"\n"clips/b/0.wav","cat ""x"""\n',
        "ok",
    ),
    "unterminated quote": ('path,label\n"clips/a/0.wav,a\nclips/b/0.wav,b\n', "error"),
    "bad split": ("clips/a/0.wav,a,holdout\n", "error"),
    "numbers as labels": ("clips/a/0.wav,1\nclips/b/0.wav,-2\nclips/b/1.wav,1e9\n", "ok"),
    "label is not a number it looks like": ("clips/a/0.wav,1.5.2\nclips/b/0.wav,nan\n", "ok"),
    "tab separated": ("path\tlabel\nclips/a/0.wav\ta\nclips/b/0.wav\tb\n", "ok"),
    "Latin-1 bytes": (b"path,label\nclips/a/0.wav,caf\xe9\n", "error"),
    "random bytes": (bytes(range(256)) * 8, "error"),
    "field over csv's size limit": ("clips/a/0.wav," + "d" * 200_000 + "\n", "error"),
    "a folder as a path": ("clips/a,a\nclips/b/0.wav,b\n", "error"),
    "all paths missing": ("nope.wav,a\nnope2.wav,b\n", "error"),
    "only an empty file": ("clips/empty.wav,a\n", "error"),
    "extra columns": ("clips/a/0.wav,a,train,g1,x,y\nclips/b/0.wav,b,test,g2,,\n", "ok"),
    "NUL byte in a path": ("clips/a/0.wav\x00,a\nclips/b/0.wav,b\n", "error"),
    "blank lines and commas only": ("\n,\n,,\n\n", "error"),
    "path escaping the folder (..)": ("../outside.wav,a\nclips/b/0.wav,b\n", "ok"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_csv_manifests_by_hand(case, csv_root, tally):
    text, expected = CSV_CASES[case]
    path = csv_root / f"{_digest(case)}.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    outcome = check_manifest(path)
    tally["CSV manifest (hand-made)", outcome] += 1
    assert outcome == expected, case


CELL = st.one_of(
    st.sampled_from(
        ["clips/a/0.wav", "clips/b/1.wav", "../outside.wav", "clips/empty.wav", "nope.wav", ""]
    ),
    st.text(max_size=12),
)
LABEL = st.one_of(st.sampled_from(["a", "b", "1", "-1", "x y", 'q"q', "é"]), st.text(max_size=8))


@fuzz(80)
@given(
    rows=st.lists(
        st.tuples(
            CELL,
            LABEL,
            st.sampled_from(["", "train", "val", "test", "TEST", "eval", "bogus"]),
            st.text(max_size=4),
        ),
        max_size=8,
    ),
    header=st.booleans(),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    delimiter=st.sampled_from([",", "\t", ";"]),
    columns=st.integers(1, 4),
)
def test_csv_manifests_fuzzed(rows, header, bom, newline, delimiter, columns, csv_root, tally):
    import csv as csvmod

    buf = io.StringIO()
    writer = csvmod.writer(buf, delimiter=delimiter, lineterminator=newline)
    if header:
        writer.writerow(["path", "label", "split", "group"][:columns])
    for row in rows:
        writer.writerow(list(row)[:columns])
    text = ("\ufeff" if bom else "") + buf.getvalue()
    path = csv_root / f"fz{_digest(text)}.csv"
    path.write_text(text, encoding="utf-8", newline="")
    tally["CSV manifest (fuzzed)", check_manifest(path)] += 1


# ----------------------------------------------------------------------------- AudioSet metadata
HEADER = "# Segments csv created Sun Mar  5 10:54:31 2017\n# YTID, start, end, labels\n"
SEGMENT_CASES = {
    "empty": "",
    "header only": HEADER,
    "BOM": '\ufeff--PJHxphWEs, 30.000, 40.000, "/m/09x0r"\n',
    "CRLF": '--PJHxphWEs, 30.000, 40.000, "/m/09x0r"\r\n-0DLPzsiXXE, 1, 11, "/m/a,/m/b"\r\n',
    "missing columns": "--PJHxphWEs, 30.000\n",
    "bad numbers": '--PJHxphWEs, abc, 40, "/m/x"\n--PJHxphWEs, nan, inf, "/m/x"\n'
    '--PJHxphWEs, 1e400, 2, "/m/x"\n--PJHxphWEs, -5, 2, "/m/x"\n--PJHxphWEs, 9, 3, "/m/x"\n',
    "IDs that look like options": '-o /tmp/x00, 1, 2, "/m/x"\n--exec=rmrf, 1, 2, "/m/x"\n',
    "unterminated quote": '--PJHxphWEs, 30.000, 40.000, "/m/09x0r\n',
    "field over csv's size limit": '--PJHxphWEs, 30, 40, "' + "x" * 200_000 + '"\n',
    "NUL in an ID": '--PJHxphWEs\x00, 30.000, 40.000, "/m/09x0r"\n',
    "no labels": '--PJHxphWEs, 30.000, 40.000, ""\n',
}


@pytest.mark.parametrize("case", list(SEGMENT_CASES) + ["random bytes", "Latin-1"])
def test_segment_csvs_by_hand(case, files, tally):
    data = {"random bytes": bytes(range(256)) * 4, "Latin-1": b'--PJHxphWEs, 3, 4, "caf\xe9"\n'}
    raw = data.get(case) or SEGMENT_CASES[case].encode()
    path = files.write("x_segments.csv", raw)
    tally["AudioSet segment CSV", check_segments(path)] += 1
    if case == "BOM":
        assert len(audioset.read_segments(path)) == 1  # the mark must not spoil the first ID


def check_segments(path: Path) -> str:
    try:
        table = audioset.read_segments(path)
    except SnnError as exc:
        one_line(exc, path)
        return "error"
    for i in range(len(table)):
        assert audioset.is_valid_ytid(str(table.ytid[i]))
        assert 0 <= table.start[i] < table.end[i] and np.isfinite(table.end[i])
        assert table.labels(i)
    for _file, _line, reason in table.malformed:
        assert "\n" not in reason
    return "ok" if len(table) else "ok (no rows)"


@fuzz(60)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(["--PJHxphWEs", "-0DLPzsiXXE", "-o x"]), st.text(max_size=13)
            ),
            st.one_of(st.floats(allow_nan=True), st.text(max_size=5)),
            st.one_of(st.floats(allow_nan=True), st.text(max_size=5)),
            st.one_of(st.sampled_from(["/m/a,/m/b", "/m/a", ""]), st.text(max_size=10)),
        ),
        max_size=8,
    ),
    quote=st.booleans(),
)
def test_segment_csvs_fuzzed(rows, quote, files, tally):
    lines = []
    for ytid, start, end, labels in rows:
        lab = '"' + str(labels).replace('"', '""') + '"' if quote else str(labels)
        lines.append(f"{ytid}, {start}, {end}, {lab}")
    path = files.write("f_segments.csv", (HEADER + "\n".join(lines)).encode("utf-8", "replace"))
    tally["AudioSet segment CSV", check_segments(path)] += 1


def check_ontology(path: Path) -> str:
    try:
        onto = audioset.load_ontology(path)
    except SnnError as exc:
        one_line(exc, path)
        return "error"
    for nid in list(onto.nodes)[:200]:  # every walk ends, even on cycles (200: walks are O(n))
        assert (
            nid in onto.descendants(nid, skip=("abstract", "blacklist"))
            or onto.nodes[nid].restrictions
        )
        assert onto.path(nid)
    for problem in onto.problems:
        assert "\n" not in problem
    return "ok"


ONTOLOGY_CASES = {
    "empty": "",
    "not a list": '{"id": "/m/x"}',
    "empty list": "[]",
    "bad JSON": '[{"id": "a",]',
    "cycle a->b->a": [
        {"id": "a", "name": "A", "child_ids": ["b"]},
        {"id": "b", "child_ids": ["a"]},
    ],
    "self cycle": [{"id": "a", "name": "A", "child_ids": ["a"]}],
    "missing child id": [{"id": "a", "name": "A", "child_ids": ["zz"]}],
    "entry without id": [{"name": "A"}, {"id": "b", "name": "B"}],
    "id not a string": [{"id": 5, "name": "A"}, {"id": "b"}],
    "child_ids a string": [{"id": "a", "child_ids": "b"}, {"id": "b"}],
    "child_ids numbers and null": [{"id": "a", "child_ids": [1, 2, None]}],
    "restrictions a number": [{"id": "a", "restrictions": 5}],
    "restrictions a string": [{"id": "a", "restrictions": "abstract"}],
    "entries not objects": [1, "x", None, {"id": "a"}],
    "duplicate ids": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}],
    "name an object": [{"id": "a", "name": {"x": 1}}],
    "nested 100000 deep": "[" * 100_000 + "]" * 100_000,
    "chain of 5000": [
        {"id": f"n{i}", "name": f"N{i}", "child_ids": [f"n{i + 1}"]} for i in range(5000)
    ],
}


@pytest.mark.parametrize("case", list(ONTOLOGY_CASES) + ["random bytes"])
def test_ontology_json_by_hand(case, files, tally):
    value = ONTOLOGY_CASES.get(case)
    raw = (
        bytes(range(128, 256)) * 4
        if case == "random bytes"
        else (value if isinstance(value, str) else json.dumps(value)).encode()
    )
    path = files.write("ontology.json", raw)
    outcome = check_ontology(path)
    tally["AudioSet ontology JSON", outcome] += 1
    if case == "restrictions a string":
        assert audioset.load_ontology(path).nodes["a"].restrictions == ("abstract",)


NODE_ID = st.sampled_from(["a", "b", "c", "d", "", "/m/x"])
JSON_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@fuzz(80)
@given(
    records=st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {"id": NODE_ID},
                optional={
                    "name": st.one_of(st.text(max_size=5), JSON_JUNK),
                    "child_ids": st.one_of(st.lists(NODE_ID, max_size=4), JSON_JUNK),
                    "restrictions": st.one_of(
                        st.lists(st.sampled_from(["abstract", "blacklist", "x"])), JSON_JUNK
                    ),
                },
            ),
            JSON_JUNK,
        ),
        max_size=8,
    )
)
def test_ontology_json_fuzzed(records, files, tally):
    path = files.write("ontology.json", json.dumps(records).encode())
    tally["AudioSet ontology JSON", check_ontology(path)] += 1


# ----------------------------------------------------------------------------- MNIST IDX
def idx_bytes(code: int, dims: list[int], payload: bytes | None = None) -> bytes:
    head = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + (payload if payload is not None else bytes(int(np.prod(dims))))


def check_idx(path: Path) -> str:
    try:
        a = read_idx(path)
    except SnnError as exc:
        one_line(exc, path)
        return "error"
    assert isinstance(a, np.ndarray) and a.ndim >= 1
    return "ok"


IDX_CASES = {
    "empty": b"",
    "2-byte magic": b"\x00\x00",
    "wrong magic": b"\x01\x02\x08\x03" + bytes(100),
    "unknown type 0x07": bytes([0, 0, 7, 1]) + struct.pack(">I", 3) + bytes(3),
    "0 dimensions": bytes([0, 0, 8, 0]),
    "9 dimensions": bytes([0, 0, 8, 9]) + bytes(36),
    "dims cut short": bytes([0, 0, 8, 3]) + bytes(5),
    "data cut short": idx_bytes(8, [10, 28, 28])[:200],
    "claims 2**96 bytes": bytes([0, 0, 8, 3]) + struct.pack(">III", *[0xFFFFFFFF] * 3),
    "claims 32 GB of doubles": bytes([0, 0, 0x0E, 1]) + struct.pack(">I", 0xFFFFFFFF),
    "gzip cut short": gzip.compress(idx_bytes(8, [50, 28, 28], os.urandom(50 * 784)))[:3000],
    "gzip magic then junk": b"\x1f\x8b" + bytes(range(256)) * 2,
    "valid, 0 items": idx_bytes(8, [0, 28, 28]),
}


@pytest.mark.parametrize("case", list(IDX_CASES))
def test_idx_files_by_hand(case, files, tally):
    outcome = check_idx(files.write("t10k-images-idx3-ubyte", IDX_CASES[case]))
    tally["MNIST IDX", outcome] += 1
    assert outcome == ("ok" if case.startswith("valid") else "error")


@fuzz(80)
@given(
    code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
    dims=st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 6), min_size=0, max_size=5),
    payload=st.binary(max_size=400),
    gz=st.booleans(),
    first=st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x1f\x8b"]),
)
def test_idx_files_fuzzed(code, dims, payload, gz, first, files, tally):
    raw = first + bytes([code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    raw += payload
    outcome = check_idx(files.write("x-idx1-ubyte", gzip.compress(raw) if gz else raw))
    tally["MNIST IDX", outcome] += 1


def _mnist_folder(files, images: bytes | None, labels: bytes | None) -> Path:
    folder = files.path("mnist")
    folder.mkdir()
    if images is not None:
        (folder / "t10k-images-idx3-ubyte").write_bytes(images)
    if labels is not None:
        (folder / "t10k-labels-idx1-ubyte").write_bytes(labels)
    return folder


MNIST_CASES = {
    "images and labels disagree": (idx_bytes(8, [10, 28, 28]), idx_bytes(8, [9])),
    "labels above 9": (idx_bytes(8, [3, 28, 28]), idx_bytes(8, [3], bytes([1, 2, 200]))),
    "labels negative": (idx_bytes(8, [3, 28, 28]), idx_bytes(9, [3], bytes([255, 1, 2]))),
    "labels 2-D": (idx_bytes(8, [3, 28, 28]), idx_bytes(8, [3, 1])),
    "images 1-D": (idx_bytes(8, [3]), idx_bytes(8, [3])),
    "no label file": (idx_bytes(8, [3, 28, 28]), None),
    "label file is junk": (idx_bytes(8, [3, 28, 28]), b"junk"),
    "0 images": (idx_bytes(8, [0, 28, 28]), idx_bytes(8, [0])),
}


@pytest.mark.parametrize("case", list(MNIST_CASES))
def test_mnist_specs_by_hand(case, files, tally):
    folder = _mnist_folder(files, *MNIST_CASES[case])
    with pytest.raises(SnnError) as info:
        open_source(f"mnist:{folder}")
    one_line(info.value, folder)
    tally["mnist: spec", "error"] += 1
