"""Select a class-balanced AudioSet subset from the ontology and the segment CSVs.

A clip belongs to a target class when any of its labels is that ontology node or one of its
descendants (``child_ids`` walked by ID). Clips that fall in more than one target are dropped, so
the classes never overlap; then optional filters drop clips carrying excluded labels (Speech as
noise...), clips shorter than a minimum, and cap each class (seeded sampling, optionally balanced
to the smallest class). ``select`` records the per-class counts after each step.

The selection is written as ``manifest.csv`` (+ ``selection.json``) in the output folder;
``engine.audioset.download`` fetches its clips into ``DIR/<class>/<ytid>_<start ms>.wav`` and
``open_output(DIR)`` reads the result as a data source (``audioset:DIR``).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Generator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from engine.audioset.metadata import (
    FORMATS,
    Ontology,
    SegmentTable,
    clip_key,
    folder_name,
    label_mask,
    load_ontology,
    node_clip_counts,
    read_segments,
)
from engine.audioset.official import resolve_input
from engine.errors import ConfigError

DEFAULT_CLASSES = ("Music", "Animal", "Sounds of things")
RESTRICTIONS = ("abstract", "blacklist")


@dataclass(frozen=True)
class SelectionConfig:
    """What to select. Class and label entries are ontology names or IDs.

    Attributes
    ----------
    classes : target classes (at least two; none may contain another).
    exclude : drop clips carrying any of these labels or a label below them.
    skip_restricted : restrictions (``"abstract"``, ``"blacklist"``) whose nodes' own labels do
        not make a clip belong to a target (their children still do).
    min_length : drop segments shorter than this many seconds (0 = keep all).
    per_class : keep at most this many clips per class (None = all).
    balance : also cap every class at the size of the smallest one.
    seed : seeds the sampling under a cap.
    format : audio file format of the downloaded clips, ``"wav"`` or ``"flac"``.
    """

    classes: tuple[str, ...] = DEFAULT_CLASSES
    exclude: tuple[str, ...] = ()
    skip_restricted: tuple[str, ...] = ()
    min_length: float = 0.0
    per_class: int | None = None
    balance: bool = False
    seed: int = 0
    format: str = "wav"

    def __post_init__(self) -> None:
        for name in ("classes", "exclude", "skip_restricted"):
            value = getattr(self, name)
            value = (value,) if isinstance(value, str) else value
            object.__setattr__(self, name, tuple(v.strip() for v in value if v.strip()))
        if len(self.classes) < 2:
            raise ConfigError("classes: pick at least two target classes")
        if len(set(self.classes)) != len(self.classes):
            raise ConfigError("classes: a class is listed twice")
        bad = [r for r in self.skip_restricted if r not in RESTRICTIONS]
        if bad:
            raise ConfigError(f"skip_restricted: unknown {bad[0]!r} (use abstract, blacklist)")
        if not self.min_length >= 0:
            raise ConfigError("min_length: must be 0 or more seconds")
        if self.per_class is not None and int(self.per_class) < 1:
            raise ConfigError("per_class: must be at least 1 (or empty for no cap)")
        if self.format not in FORMATS:
            raise ConfigError(f"format: {self.format!r} is not one of {', '.join(FORMATS)}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> SelectionConfig:
        """From saved settings (``to_dict``); ConfigError on anything that is not one."""
        if not isinstance(data, dict):
            raise ConfigError(f"selection settings: expected a table, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        try:
            return cls(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
            )
        except (TypeError, ValueError, AttributeError) as exc:  # a value of the wrong type
            raise ConfigError(f"selection settings: {str(exc)[:200]}") from None


@dataclass(frozen=True)
class FilterStep:
    """Per-class clip counts after one step (``counts`` follows ``Selection.class_names``)."""

    name: str
    description: str
    counts: tuple[int, ...]
    active: bool = True


@dataclass(frozen=True)
class Clip:
    """One selected segment and its class."""

    ytid: str
    start: float
    end: float
    class_index: int
    labels: tuple[str, ...]
    source: str

    @property
    def key(self) -> str:
        return clip_key(self.ytid, self.start)

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Selection:
    """The result of ``select``: classes, clips and how each filter changed the counts."""

    config: SelectionConfig
    class_ids: tuple[str, ...]
    class_names: tuple[str, ...]
    steps: tuple[FilterStep, ...]
    clips: tuple[Clip, ...]
    overlaps: tuple[tuple[int, int, int], ...]  # (class a, class b, clips in both)
    overlap_removed: int
    cooccurring: tuple[tuple[tuple[str, int], ...], ...]  # per class: other labels, most common
    sublabels: tuple[tuple[tuple[str, int], ...], ...]  # per class: labels inside the class
    rows: int
    sources: tuple[str, ...]
    malformed_count: int = 0
    malformed: tuple[tuple[str, int, str], ...] = ()
    duplicates: int = 0
    unknown_labels: tuple[str, ...] = ()

    @property
    def counts(self) -> tuple[int, ...]:
        return self.steps[-1].counts

    def file_for(self, clip: Clip) -> str:
        """The clip's file, relative to the output folder (``Music/abc_30000.wav``)."""
        return f"{folder_name(self.class_names[clip.class_index])}/{clip.key}.{self.config.format}"


def split_names(text: str, onto: Ontology) -> tuple[str, ...]:
    """Split a comma-separated list of node names or IDs, keeping names that hold commas.

    ``"Music, Domestic animals, pets"`` gives ``("Music", "Domestic animals, pets")``: adjacent
    pieces are joined back when together they name an ontology node (longest match first).
    """
    pieces = [p.strip() for p in text.split(",") if p.strip()]
    known = {n.name.casefold() for n in onto.nodes.values()}
    out, i = [], 0
    while i < len(pieces):
        for j in range(len(pieces), i, -1):
            joined = ", ".join(pieces[i:j])
            if j == i + 1 or joined.casefold() in known:
                out.append(joined)
                i = j
                break
    return tuple(out)


def _resolve_all(onto: Ontology, names: tuple[str, ...], field_name: str) -> tuple[str, ...]:
    try:
        return tuple(onto.resolve(n) for n in names)
    except ConfigError as exc:
        raise ConfigError(f"{field_name}: {exc}") from None


def select(onto: Ontology, table: SegmentTable, config: SelectionConfig | None = None) -> Selection:
    """Apply ``config`` to the segments; see the module docstring for the steps."""
    cfg = config or SelectionConfig()
    class_ids = _resolve_all(onto, cfg.classes, "classes")
    if len(set(class_ids)) != len(class_ids):
        raise ConfigError("classes: two entries name the same ontology node")
    subtrees = [onto.descendants(c) for c in class_ids]
    for a, ca in enumerate(class_ids):
        for b, cb in enumerate(class_ids):
            if a != b and cb in subtrees[a]:
                raise ConfigError(
                    f"classes: {onto.name(cb)} lies inside {onto.name(ca)}; "
                    "pick classes that do not contain each other"
                )
    members = [onto.descendants(c, skip=cfg.skip_restricted) for c in class_ids]
    n_rows, n_cls = len(table), len(class_ids)
    m = np.zeros((n_rows, n_cls), dtype=bool)
    for c, ids in enumerate(members):
        m[:, c] = table.rows_with_any(label_mask(table, ids))
    steps = []

    def record(name: str, description: str, keep: np.ndarray, active: bool = True) -> None:
        counts = tuple(int(v) for v in (m & keep[:, None]).sum(axis=0))
        steps.append(FilterStep(name, description, counts, active))

    skip_note = f" (ignoring {'/'.join(cfg.skip_restricted)} nodes)" if cfg.skip_restricted else ""
    record("labelled", f"a label at or below the class{skip_note}", np.ones(n_rows, bool))
    n_in = m.sum(axis=1)
    both = m.T.astype(np.int64) @ m.astype(np.int64)
    overlaps = tuple(
        (a, b, int(both[a, b])) for a in range(n_cls) for b in range(a + 1, n_cls) if both[a, b]
    )
    keep = n_in == 1
    record("no overlap", "clips in more than one class removed", keep)
    overlap_removed = int((n_in > 1).sum())

    exclude_ids = _resolve_all(onto, cfg.exclude, "exclude")
    if exclude_ids:
        banned = set().union(*(onto.descendants(e) for e in exclude_ids))
        keep &= ~table.rows_with_any(label_mask(table, banned))
        names = ", ".join(onto.name(e) for e in exclude_ids)
        record("exclude", f"clips labelled {names} removed", keep)
    else:
        record("exclude", "no labels excluded", keep, active=False)

    if cfg.min_length > 0:
        keep &= (table.end - table.start) >= cfg.min_length - 1e-6
        record("min length", f"segments shorter than {cfg.min_length:g} s removed", keep)
    else:
        record("min length", "no minimum length", keep, active=False)

    counts = (m & keep[:, None]).sum(axis=0)
    cap = None if cfg.per_class is None else int(cfg.per_class)
    if cfg.balance and n_cls:
        cap = int(counts.min()) if cap is None else min(cap, int(counts.min()))
    rng = np.random.default_rng(cfg.seed)
    chosen: list[np.ndarray] = []
    for c in range(n_cls):
        rows = np.flatnonzero(keep & m[:, c])
        if cap is not None and len(rows) > cap:
            rows = np.sort(rng.choice(rows, size=cap, replace=False))
        chosen.append(rows)
    final = np.zeros(n_rows, dtype=bool)
    for rows in chosen:
        final[rows] = True
    if cap is not None:
        how = "balanced to the smallest class" if cfg.balance else "per-class cap"
        record("cap", f"{how}: at most {cap} clips per class (seed {cfg.seed})", final)
    else:
        record("cap", "no per-class cap", final, active=False)

    clips = []
    cooc, subl = [], []
    for c, rows in enumerate(chosen):
        outside: Counter[str] = Counter()
        inside: Counter[str] = Counter()
        for r in rows:
            labels = table.labels(int(r))
            clips.append(
                Clip(
                    ytid=str(table.ytid[r]),
                    start=float(table.start[r]),
                    end=float(table.end[r]),
                    class_index=c,
                    labels=labels,
                    source=table.sources[int(table.source[r])],
                )
            )
            for lab in labels:
                if lab == class_ids[c]:
                    continue
                (inside if lab in subtrees[c] else outside)[onto.name(lab)] += 1
        cooc.append(tuple(outside.most_common(10)))
        subl.append(tuple(inside.most_common(10)))
    return Selection(
        config=cfg,
        class_ids=class_ids,
        class_names=tuple(onto.name(c) for c in class_ids),
        steps=tuple(steps),
        clips=tuple(clips),
        overlaps=overlaps,
        overlap_removed=overlap_removed,
        cooccurring=tuple(cooc),
        sublabels=tuple(subl),
        rows=n_rows,
        sources=table.sources,
        malformed_count=table.malformed_count,
        malformed=table.malformed,
        duplicates=table.duplicates,
        unknown_labels=tuple(sorted(lab for lab in table.label_ids if lab not in onto.nodes)),
    )


def format_preview(sel: Selection) -> str:
    """A plain-text report: counts per class after each step, overlaps, co-occurring labels."""
    names = list(sel.class_names)
    width = max(12, *(len(n) for n in names))
    lines = [
        f"{sel.rows:,} segments from {', '.join(sel.sources)} "
        f"({sel.malformed_count} malformed rows skipped, {sel.duplicates} duplicates)"
    ]
    for f, line, why in sel.malformed[:5]:
        lines.append(f"  malformed: {f} line {line}: {why}")
    if sel.unknown_labels:
        lines.append(f"  {len(sel.unknown_labels)} labels not in the ontology ignored")
    header = f"{'step':<12}" + "".join(f"{n:>{width + 2}}" for n in names) + f"{'total':>9}"
    lines += ["", header]
    for step in sel.steps:
        cells = "".join(f"{v:>{width + 2},}" for v in step.counts)
        note = step.description if step.active else "(off)"
        lines.append(f"{step.name:<12}{cells}{sum(step.counts):>9,}  {note}")
    lines.append("")
    lines.append(f"overlaps removed: {sel.overlap_removed:,} clips in more than one class")
    for a, b, n in sel.overlaps:
        lines.append(f"  {names[a]} & {names[b]}: {n:,}")
    lines.append("most common co-occurring labels (outside the class):")
    for c, name in enumerate(names):
        top = ", ".join(f"{lab} {n:,}" for lab, n in sel.cooccurring[c][:6]) or "none"
        lines.append(f"  {name}: {top}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- jobs (GUI, CLI)
@dataclass(frozen=True)
class LoadProgress:
    """What a loading job is doing now (one line)."""

    stage: str


@dataclass(frozen=True)
class LoadedMetadata:
    """The ontology, the segments of the chosen CSVs and each node's clip count."""

    ontology: Ontology
    table: SegmentTable
    node_counts: Mapping[str, int]
    ontology_path: str
    segment_paths: tuple[str, ...]


def load_job(
    ontology: str | os.PathLike,
    segments: Sequence[str | os.PathLike],
    stop: threading.Event | None = None,
) -> Generator[LoadProgress, None, LoadedMetadata | None]:
    """Resolve (fetch if needed), read and index the metadata; None when stopped."""
    yield LoadProgress(f"reading {os.path.basename(os.fspath(ontology))}")
    onto = load_ontology(resolve_input(ontology))
    paths = []
    for seg in segments:
        if stop is not None and stop.is_set():
            return None
        yield LoadProgress(f"finding {os.path.basename(os.fspath(seg))}")
        paths.append(resolve_input(seg))
    if not paths:
        raise ConfigError("segments: add at least one segment CSV")
    yield LoadProgress(f"reading {len(paths)} segment file(s)")
    table = read_segments(paths)
    if stop is not None and stop.is_set():
        return None
    yield LoadProgress("counting clips per ontology node")
    counts = node_clip_counts(onto, table)
    return LoadedMetadata(onto, table, counts, str(ontology), tuple(str(p) for p in paths))


def select_job(
    onto: Ontology,
    table: SegmentTable,
    config: SelectionConfig,
    stop: threading.Event | None = None,
) -> Generator[LoadProgress, None, Selection]:
    """``select`` as a job (it takes a fraction of a second even on a million rows)."""
    yield LoadProgress("selecting clips")
    return select(onto, table, config)
