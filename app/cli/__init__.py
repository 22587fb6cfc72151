"""The ``snn-explorer`` command: no sub-command opens the GUI; sub-commands run the engine headless.

Each sub-command lives in its own module in this package and exposes ``add_parser(subparsers)``
(which registers it and sets ``func``). Modules listed in ``COMMANDS`` that are absent are not
offered, so ``--help`` lists exactly what exists.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys

from engine import __version__
from engine.errors import SnnError

# (module name in app.cli, sub-command) in the order --help shows them
COMMANDS = [
    ("screenshot", "screenshot"),
    ("data", "data"),
    ("features", "features"),
    ("train", "train"),
    ("sweep", "sweep"),
    ("classify", "classify"),
    ("runs", "runs"),
    ("report", "report"),
    ("dataset", "dataset"),
    ("listen", "listen"),
    ("record", "record"),
    ("export", "export"),
    ("bench", "bench"),
]


class _Parser(argparse.ArgumentParser):
    """argparse that prints one line (not the usage block) on a bad option, exit code 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="snn-explorer",
        description="Explore spiking neural networks on sound. With no command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"snn-explorer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module, _name in COMMANDS:
        full = f"app.cli.{module}"
        if importlib.util.find_spec(full) is None:
            continue
        importlib.import_module(full).add_parser(sub)
    return parser


def _no_display() -> str:
    """Why the window cannot open here (Linux with no display and no Qt platform), or ""."""
    if not sys.platform.startswith("linux"):
        return ""
    if any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        return ""
    return (
        "no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset): run it in a "
        "desktop session, under Xvfb (xvfb-run snn-explorer), or render a tab with "
        "'snn-explorer screenshot --tab training --out shot.png'; every command works without one"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a relaunch runs again
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        why = _no_display()
        if why:
            print(f"snn-explorer: {why}", file=sys.stderr)
            return 1
        from app.main_window import run_gui

        return run_gui()
    try:
        return int(args.func(args) or 0)
    except SnnError as exc:
        # one line per job: in a multi-process run every rank meets the same error, rank 0 says it
        if os.environ.get("RANK", "0") == "0":
            print(f"snn-explorer {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"snn-explorer {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly, as the shell's own tools do; stdout
        # points at /dev/null so the interpreter's last flush does not complain either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
