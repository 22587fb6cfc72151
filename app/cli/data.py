"""``snn-explorer data info --data SPEC``: what a data set holds (classes, counts, splits...);
``data list``: the sets that can be fetched; ``data fetch NAME``: download one."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "data",
        help="inspect a data set (classes, counts, durations, splits, skipped files)",
        description="Inspect a data set given as a spec (folder:PATH, csv:PATH, fsdd:PATH, "
        "mnist:PATH, audioset:PATH, speechcommands:PATH, shd:PATH, ssc:PATH, or the name of a "
        "fetched set), or fetch a published one.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    info = actions.add_parser("info", help="print a data set's summary")
    info.add_argument(
        "--data", required=True, metavar="SPEC", help="e.g. fsdd:../shared/data/fsdd/recordings"
    )
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.add_argument("--seed", type=int, default=0, help="seed of the carved splits (default 0)")
    info.add_argument("--val-fraction", type=float, default=0.1, metavar="F")
    info.add_argument("--test-fraction", type=float, default=0.1, metavar="F")
    info.add_argument("--no-groups", action="store_true", help="carve splits ignoring groups")
    info.set_defaults(func=run_info)
    listing = actions.add_parser("list", help="list the data sets 'data fetch' can download")
    listing.set_defaults(func=run_list)
    fetch = actions.add_parser(
        "fetch",
        help="download a published data set (resumable; checksum-checked)",
        description="Download, check and unpack a published data set; then --data NAME opens "
        "it. An interrupted download resumes where it stopped.",
    )
    fetch.add_argument("name", metavar="NAME", help="fsdd, esc50, speechcommands, shd, ssc, ...")
    fetch.add_argument(
        "--dir", metavar="DIR", help="data folder (default: the per-user data folder)"
    )
    fetch.add_argument("--force", action="store_true", help="fetch again even if it is there")
    fetch.set_defaults(func=run_fetch)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser) -> int:
    parser.print_help()
    return 2


def run_info(args) -> int:
    from engine.data.specs import open_source, split_sizes

    source = open_source(args.data)
    summary = source.summary()
    sizes = split_sizes(
        source,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        group_key=not args.no_groups,
    )
    if args.json:
        d = summary.to_dict()
        d["splits"] = {
            "train": sizes.train,
            "val": sizes.val,
            "test": sizes.test,
            "seed": args.seed,
        }
        print(json.dumps(d, indent=2))
        return 0
    lines = summary.lines()
    licence = _licence_of(args.data)
    if licence:
        lines.insert(1, f"licence    {licence}")
    at = next((i for i, line in enumerate(lines) if line == ""), len(lines))
    lines.insert(
        at,
        f"training   train {sizes.train} / val {sizes.val} / test {sizes.test} (seed {args.seed})",
    )
    print("\n".join(lines))
    return 0


def _licence_of(spec: str) -> str | None:
    """The catalog licence of a fetched set opened by name."""
    from engine.data.catalog import names
    from engine.data.fetch import fetched

    name = spec.strip().lower()
    if name in names():
        return fetched().get(name, {}).get("licence")
    return None


def run_list(args) -> int:
    from engine.data.catalog import CATALOG
    from engine.data.fetch import fetched

    have = fetched()
    for row in CATALOG:
        mark = "fetched" if row.name in have else f"~{row.approx_mb} MB"
        print(f"{row.name:15s} {mark:>9s}  {row.title}")
    return 0


def run_fetch(args) -> int:
    import os
    import sys

    from engine.data.catalog import entry
    from engine.data.fetch import fetch, fetched

    row = entry(args.name)
    print(f"{row.name}: {row.title}")
    print(f"licence: {row.licence}")
    have = fetched(args.dir).get(row.name)
    if have and os.path.isdir(have.get("folder", "")) and not args.force:
        print(f"already fetched into {have['folder']} (--force fetches it again)")
        return 0
    gen = fetch(row, args.dir)
    shown = -1
    while True:
        try:
            ev = next(gen)
        except StopIteration as done:
            result = done.value
            break
        if ev.phase == "download":
            pct = int(100 * ev.fraction) if ev.total else -1
            if pct // 10 != shown // 10 or ev.done == ev.total:
                shown = pct
                size = f"{ev.done / 1e6:.1f}/{ev.total / 1e6:.1f} MB" if ev.total else ""
                note = f" (resumed at {ev.resumed_from / 1e6:.1f} MB)" if ev.resumed_from else ""
                print(f"  {ev.file}: {size}{note}", file=sys.stderr)
        elif ev.phase in ("verify", "extract"):
            shown = -1
            print(f"  {ev.message}", file=sys.stderr)
    for line in result.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(f"fetched into {result.folder}")
    if args.dir is None:
        print(f"open it with: --data {row.name}   (spec {result.spec})")
    else:
        print(f"open it with: --data {result.spec}")
    print(f"split: {row.split}")
    return 0
