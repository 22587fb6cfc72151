"""AudioSet metadata files: the ontology (``ontology.json``) and the segment CSVs.

AudioSet is a list of 10-second YouTube segments (``YTID, start, end, "label,label"``) whose labels
are nodes of an ontology (a tree, in fact a DAG, of 632 sound classes linked by ``child_ids``).
``engine.audioset.selection`` selects classes from them; this module only reads and indexes the files
(:mod:`engine.audioset.official` finds or fetches them).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.data.audioset_folder import (  # noqa: F401 - re-exported
    FORMATS,
    YTID_RE,
    clip_key,
    folder_name,
    is_valid_ytid,
)
from engine.errors import ConfigError, DataError


# ----------------------------------------------------------------------------- ontology
@dataclass(frozen=True)
class OntologyNode:
    """One ontology class. ``restrictions`` may hold ``"abstract"`` and/or ``"blacklist"``."""

    id: str
    name: str
    description: str = ""
    child_ids: tuple[str, ...] = ()
    restrictions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ontology:
    """Nodes by ID plus the links between them; never mutated after ``parse_ontology``.

    ``children`` keeps only links to existing nodes; ``problems`` lists what was repaired
    (missing child IDs, duplicate IDs, entries without an ID, cycles).
    """

    nodes: Mapping[str, OntologyNode]
    children: Mapping[str, tuple[str, ...]]
    parents: Mapping[str, tuple[str, ...]]
    roots: tuple[str, ...]
    problems: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.nodes)

    def name(self, node_id: str) -> str:
        node = self.nodes.get(node_id)
        return node.name if node else node_id

    def descendants(self, node_id: str, skip: Iterable[str] = ()) -> frozenset[str]:
        """``node_id`` and every node below it, minus nodes whose restrictions meet ``skip``.

        A skipped node's own label does not count, but its children still do. Cycles and
        missing IDs end the walk instead of looping.
        """
        skip = frozenset(skip)
        seen: set[str] = set()
        stack = [node_id]
        while stack:
            nid = stack.pop()
            if nid in seen:
                continue
            seen.add(nid)
            stack.extend(self.children.get(nid, ()))
        if skip:
            seen = {n for n in seen if not (skip & set(self.nodes[n].restrictions))}
        return frozenset(seen)

    def resolve(self, text: str) -> str:
        """The ID of a node given its ID or its name (case-insensitive); ConfigError otherwise."""
        text = text.strip()
        if text in self.nodes:
            return text
        folded = text.casefold()
        for nid, node in self.nodes.items():
            if node.name.casefold() == folded:
                return nid
        close = difflib.get_close_matches(text, [n.name for n in self.nodes.values()], n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise ConfigError(f"class {text!r} is not an ontology node name or ID{hint}")

    def path(self, node_id: str) -> str:
        """A readable path from a root, following first parents (``Animal > Domestic animals``)."""
        names, seen, nid = [], set(), node_id
        while nid and nid not in seen:
            seen.add(nid)
            names.append(self.name(nid))
            ups = self.parents.get(nid, ())
            nid = ups[0] if ups else ""
        return " > ".join(reversed(names))


def _strings(value) -> tuple[str, ...]:
    """A JSON list of IDs or restrictions as strings; a lone string is one entry, junk none."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, (str, int, float)))
    return ()


def _oneline(text: str) -> str:
    """``text`` for a one-line message: line breaks and other control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text)[:80])


def parse_ontology(records: Sequence[Mapping], source: str = "ontology") -> Ontology:
    """Build an Ontology from the JSON records (``id``, ``name``, ``child_ids``, ...)."""
    nodes: dict[str, OntologyNode] = {}
    problems: list[str] = []
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping) or not isinstance(rec.get("id"), str) or not rec["id"]:
            problems.append(f"{source}: entry {i} has no id (skipped)")
            continue
        nid = rec["id"]
        if nid in nodes:
            problems.append(f"{source}: duplicate id {_oneline(nid)} (kept the first)")
            continue
        kids = rec.get("child_ids") or []
        nodes[nid] = OntologyNode(
            id=nid,
            name=str(rec.get("name") or nid),
            description=str(rec.get("description") or ""),
            child_ids=_strings(kids),
            restrictions=_strings(rec.get("restrictions")),
        )
    children: dict[str, tuple[str, ...]] = {}
    parents: dict[str, list[str]] = {nid: [] for nid in nodes}
    missing = []
    for nid, node in nodes.items():
        kept = []
        for kid in dict.fromkeys(node.child_ids):  # de-duplicated, order kept
            if kid not in nodes:
                missing.append(f"{_oneline(kid)} (child of {_oneline(node.name)})")
            elif kid == nid:
                problems.append(
                    f"{source}: {_oneline(node.name)} lists itself as a child (ignored)"
                )
            else:
                kept.append(kid)
                parents[kid].append(nid)
        children[nid] = tuple(kept)
    if missing:
        problems.append(
            f"{source}: {len(missing)} child ids not in the file: {', '.join(missing[:5])}"
        )
    roots = [nid for nid in nodes if not parents[nid]]
    # nodes reachable only through a cycle have no root above them: show them as roots too
    reached: set[str] = set()
    stack = list(roots)
    while stack:
        nid = stack.pop()
        if nid not in reached:
            reached.add(nid)
            stack.extend(children[nid])
    orphans = [nid for nid in nodes if nid not in reached]
    if orphans:
        problems.append(f"{source}: {len(orphans)} nodes sit only on a cycle (shown as roots)")
        roots += orphans
    return Ontology(
        nodes=nodes,
        children=children,
        parents={k: tuple(v) for k, v in parents.items()},
        roots=tuple(roots),
        problems=tuple(problems),
    )


def load_ontology(path: str | os.PathLike) -> Ontology:
    """Read ``ontology.json``; DataError (one line) when it is not a JSON list of nodes."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            records = json.load(fh)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file (expected ontology.json)") from None
    except RecursionError:  # e.g. "[[[[...": deeper than any ontology
        raise DataError(f"{path}: JSON nested too deeply (expected a list of nodes)") from None
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of ontology nodes")
    onto = parse_ontology(records, source=os.path.basename(path))
    if not onto.nodes:
        raise DataError(f"{path}: no ontology nodes with an id")
    return onto


# ----------------------------------------------------------------------------- segment CSVs
@dataclass(frozen=True)
class SegmentTable:
    """Segments of one or more CSV files, column-wise (a few million rows stay compact).

    Row ``i`` has labels ``label_ids[label_idx[label_ptr[i]:label_ptr[i + 1]]]``; ``source[i]``
    indexes ``sources`` (the CSV file stems). ``malformed`` holds ``(file, line, reason)``.
    """

    ytid: np.ndarray
    start: np.ndarray
    end: np.ndarray
    source: np.ndarray
    label_ptr: np.ndarray
    label_idx: np.ndarray
    label_ids: tuple[str, ...]
    sources: tuple[str, ...]
    malformed: tuple[tuple[str, int, str], ...] = ()
    malformed_count: int = 0
    duplicates: int = 0

    def __len__(self) -> int:
        return len(self.ytid)

    def labels(self, i: int) -> tuple[str, ...]:
        return tuple(
            self.label_ids[j] for j in self.label_idx[self.label_ptr[i] : self.label_ptr[i + 1]]
        )

    def rows_with_any(self, label_mask: np.ndarray) -> np.ndarray:
        """Boolean [rows]: True where any label's ``label_mask`` entry is True."""
        if len(self) == 0:
            return np.zeros(0, dtype=bool)
        hits = label_mask[self.label_idx].astype(np.int32)
        return np.add.reduceat(hits, self.label_ptr[:-1]) > 0


def _parse_row(row: list[str]) -> tuple[str, float, float, list[str]]:
    if len(row) != 4:
        raise ValueError(f"expected 4 fields, got {len(row)}")
    ytid = row[0].strip()
    if not is_valid_ytid(ytid):
        raise ValueError(f"bad YouTube ID {ytid[:20]!r}")
    try:
        start, end = float(row[1]), float(row[2])
    except ValueError:
        raise ValueError("start/end are not numbers") from None
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
        raise ValueError(f"bad segment {row[1].strip()}-{row[2].strip()}")
    labels = [lab.strip() for lab in row[3].split(",") if lab.strip()]
    if not labels:
        raise ValueError("no labels")
    return ytid, start, end, labels


def read_segments(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> SegmentTable:
    """Parse AudioSet segment CSVs (``#`` header lines, ``, `` separators, quoted label lists).

    Malformed rows are counted and the first few kept as ``(file, line, reason)``; they never stop
    the parse. A segment repeated (same video and start) is kept once, from the first file.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    ytids, starts, ends, srcs, ptr, idx = [], [], [], [], [0], []
    vocab: dict[str, int] = {}
    sources: list[str] = []
    malformed: list[tuple[str, int, str]] = []
    n_bad = dup = 0
    seen: set[tuple[str, int]] = set()
    for path in paths:
        path = os.fspath(path)
        base = os.path.basename(path)
        stem = base.removesuffix(".csv").removesuffix("_segments")
        sources.append(stem)
        s_index = len(sources) - 1
        try:
            # utf-8-sig: a byte-order mark (spreadsheet exports) must not spoil the first ID
            with open(path, encoding="utf-8-sig", newline="") as fh:
                text = fh.read()
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            raise DataError(f"{path}: not a UTF-8 text file (expected an AudioSet CSV)") from None
        reader = csv.reader(io.StringIO(text), skipinitialspace=True)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # a field over csv's size limit, a NUL byte...
                row = ValueError(f"unreadable row ({exc})")
            if isinstance(row, list) and (
                not row or (row[0].startswith("#")) or (len(row) == 1 and not row[0].strip())
            ):
                continue
            try:
                if isinstance(row, ValueError):
                    raise row
                ytid, start, end, labels = _parse_row(row)
            except ValueError as exc:
                n_bad += 1
                if len(malformed) < 20:
                    malformed.append((base, reader.line_num, str(exc)))
                continue
            key = (ytid, int(round(start * 1000)))
            if key in seen:
                dup += 1
                continue
            seen.add(key)
            ytids.append(ytid)
            starts.append(start)
            ends.append(end)
            srcs.append(s_index)
            for lab in labels:
                idx.append(vocab.setdefault(lab, len(vocab)))
            ptr.append(len(idx))
    return SegmentTable(
        ytid=np.array(ytids, dtype="<U11"),
        start=np.array(starts, dtype=np.float64),
        end=np.array(ends, dtype=np.float64),
        source=np.array(srcs, dtype=np.int16),
        label_ptr=np.array(ptr, dtype=np.int64),
        label_idx=np.array(idx, dtype=np.int32),
        label_ids=tuple(vocab),
        sources=tuple(sources),
        malformed=tuple(malformed),
        malformed_count=n_bad,
        duplicates=dup,
    )


def label_mask(table: SegmentTable, ids: Iterable[str]) -> np.ndarray:
    """Boolean over ``table.label_ids``: True for the labels in ``ids``."""
    wanted = set(ids)
    return np.array([lab in wanted for lab in table.label_ids], dtype=bool)


def node_clip_counts(onto: Ontology, table: SegmentTable) -> dict[str, int]:
    """For every ontology node: the number of rows with a label at or below that node."""
    # labels -> all their ancestors, then count each ancestor once per row
    ancestors: list[frozenset[str]] = []
    for lab in table.label_ids:
        seen, stack = set(), [lab]
        while stack:
            nid = stack.pop()
            if nid in seen or nid not in onto.nodes:
                continue
            seen.add(nid)
            stack.extend(onto.parents.get(nid, ()))
        ancestors.append(frozenset(seen))
    counts: Counter[str] = Counter()
    ptr, idx = table.label_ptr, table.label_idx
    # most rows share a label combination: count combinations first, then expand each once
    combos = Counter(tuple(idx[ptr[i] : ptr[i + 1]].tolist()) for i in range(len(table)))
    for combo, n in combos.items():
        for nid in frozenset().union(*(ancestors[j] for j in combo)):
            counts[nid] += n
    return {nid: counts.get(nid, 0) for nid in onto.nodes}
