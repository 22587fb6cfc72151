"""``snn-explorer report``: the HTML report of a run folder, made without a window."""

from __future__ import annotations

import os
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write the HTML report of a run folder (headless)",
        description="Write one self-contained HTML file (config, metrics, curves, confusion "
        "matrix, tracked-example traces) for RUN_DIR, as the Training tab's Report button does.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train")
    p.add_argument("--out", metavar="FILE.html", help="report file (default RUN_DIR/report.html)")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.train.run_folder import read_run

    read_run(args.run_dir)  # a DataError naming the folder before Qt starts
    out = Path(args.out) if args.out else Path(args.run_dir) / "report.html"
    if not out.parent.is_dir():
        from engine.errors import ConfigError

        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no window is shown
    from app.main_window import make_app
    from app.report import report_for_run

    _qapp = make_app()  # the plots render through Qt; kept alive until written
    print(report_for_run(args.run_dir, out))
    return 0
