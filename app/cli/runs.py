"""``snn-explorer runs``: list run folders as the Training tab's Runs table does."""

from __future__ import annotations

import dataclasses
import json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "runs",
        help="list the run folders in a folder (like the Runs table)",
        description="List every run folder directly inside DIR (or DIR itself), newest first, "
        "with the columns of the Training tab's Runs table.",
    )
    p.add_argument(
        "folder",
        nargs="?",
        metavar="DIR",
        help="folder of runs (default $SNN_EXPLORER_RUNS or ~/snn-explorer-runs)",
    )
    p.add_argument("--json", action="store_true", help="one JSON list, raw numbers")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from engine.errors import DataError
    from engine.train.run_folder import (
        COMPARISON_COLUMNS,
        comparison_rows,
        default_runs_dir,
        list_runs,
    )

    folder = Path(args.folder) if args.folder else default_runs_dir()
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    rows = comparison_rows(list_runs(folder))
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
        return 0
    if not rows:
        print(f"no run folders in {folder}")
        return 0
    table = [list(COMPARISON_COLUMNS)] + [r.cells() for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print(
            "  ".join(
                c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
            ).rstrip()
        )
    return 0
