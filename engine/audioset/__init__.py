"""The AudioSet builder: ontology and segment metadata, class selection, manifests, clip downloads.

This package's public face: ``from engine import audioset`` then ``audioset.select(...)``.
"""

from engine.audioset.metadata import (
    FORMATS,
    Ontology,
    OntologyNode,
    SegmentTable,
    clip_key,
    folder_name,
    is_valid_ytid,
    label_mask,
    load_ontology,
    node_clip_counts,
    parse_ontology,
    read_segments,
)
from engine.audioset.official import OFFICIAL_FILES, default_audioset_dir, resolve_input
from engine.audioset.output import (
    MANIFEST_NAME,
    SELECTION_NAME,
    ManifestRow,
    open_output,
    read_manifest,
    write_manifest,
)
from engine.audioset.selection import (
    DEFAULT_CLASSES,
    Clip,
    FilterStep,
    LoadedMetadata,
    LoadProgress,
    Selection,
    SelectionConfig,
    format_preview,
    load_job,
    select,
    select_job,
    split_names,
)

__all__ = [
    "DEFAULT_CLASSES",
    "FORMATS",
    "MANIFEST_NAME",
    "OFFICIAL_FILES",
    "SELECTION_NAME",
    "Clip",
    "FilterStep",
    "ManifestRow",
    "Ontology",
    "OntologyNode",
    "SegmentTable",
    "Selection",
    "SelectionConfig",
    "clip_key",
    "default_audioset_dir",
    "folder_name",
    "format_preview",
    "load_job",
    "LoadedMetadata",
    "LoadProgress",
    "is_valid_ytid",
    "label_mask",
    "load_ontology",
    "node_clip_counts",
    "open_output",
    "parse_ontology",
    "read_manifest",
    "read_segments",
    "resolve_input",
    "select",
    "select_job",
    "split_names",
    "write_manifest",
]
