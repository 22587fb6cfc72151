"""``snn-explorer data info --data SPEC``: what a data set holds (classes, counts, splits...)."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "data",
        help="inspect a data set (classes, counts, durations, splits, skipped files)",
        description="Inspect a data set given as a spec: folder:PATH, csv:PATH, fsdd:PATH, "
        "mnist:PATH or audioset:PATH.",
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
    at = next((i for i, line in enumerate(lines) if line == ""), len(lines))
    lines.insert(
        at,
        f"training   train {sizes.train} / val {sizes.val} / test {sizes.test} (seed {args.seed})",
    )
    print("\n".join(lines))
    return 0
