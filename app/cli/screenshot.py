"""``snn-explorer screenshot``: render one tab of the real main window offscreen to a PNG."""

from __future__ import annotations

import os
import sys
import time


def add_parser(sub) -> None:
    p = sub.add_parser("screenshot", help="render one tab of the main window to a PNG, offscreen")
    from app.panels import TABS  # names only: no Qt is imported to build the parser

    names = ", ".join(t[0] for t in TABS)
    p.add_argument("--tab", required=True, help=f"tab name: {names}")
    p.add_argument("--out", required=True, help="output PNG file")
    p.add_argument("--size", default="1280x820", help="window size WxH (default 1280x820)")
    p.add_argument("--run", default=None, help="training tab: a run folder to show")
    p.add_argument("--sweep", default=None, help="training tab: a sweep folder to show")
    p.add_argument("--data", default=None, help="data/encoding tabs: a data set spec to show")
    p.add_argument("--checkpoint", default=None, help="live tab: a checkpoint to load")
    p.add_argument(
        "--view",
        default=None,
        help="a sub-tab of the tab to show, by its title (e.g. 'Tracked example')",
    )
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for content")
    p.set_defaults(func=run)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w < 200 or h < 150 or w > 8000 or h > 8000:
            raise ValueError
        return w, h
    except ValueError:
        raise SystemExit(
            f"snn-explorer screenshot: error: --size {text!r} must be WxH, e.g. 1280x820"
        ) from None


def _show_view(panel, title: str) -> bool:
    """Make the sub-tab titled ``title`` current in any tab widget of ``panel``."""
    from PySide6.QtWidgets import QTabWidget

    for tabs in panel.findChildren(QTabWidget):
        for i in range(tabs.count()):
            if tabs.tabText(i).replace("&", "").lower() == title.lower():
                tabs.setCurrentIndex(i)
                return True
    return False


def run(args) -> int:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot never needs a display
    width, height = _parse_size(args.size)
    from app.main_window import available_tabs

    names = [t[0] for t in available_tabs()]
    if args.tab not in names:
        print(
            f"snn-explorer screenshot: error: unknown tab {args.tab!r} (choose from {', '.join(names)})",
            file=sys.stderr,
        )
        return 2

    import tempfile

    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from app.main_window import MainWindow, make_app
    from engine.atomic import atomic_path

    _qapp = make_app()  # kept alive until the grab
    # a throw-away settings file: the screenshot shows defaults, not this user's last session
    tmp = tempfile.TemporaryDirectory()
    settings = QSettings(os.path.join(tmp.name, "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    window.resize(width, height)
    window.show_tab(args.tab)
    window.show()
    panel = window.panels[args.tab]
    options = {"run": args.run, "data": args.data, "checkpoint": args.checkpoint}
    options["sweep"] = args.sweep
    if hasattr(panel, "prepare_screenshot"):
        panel.prepare_screenshot(options)
    ready = getattr(panel, "screenshot_ready", lambda: True)
    deadline = time.monotonic() + args.timeout
    loop = QEventLoop()
    while True:
        QTimer.singleShot(100, loop.quit)
        loop.exec()
        if ready() or time.monotonic() > deadline:
            break
    if args.view and not _show_view(panel, args.view):
        print(
            f"snn-explorer screenshot: error: no view {args.view!r} in tab {args.tab}",
            file=sys.stderr,
        )
        window.close()
        return 2
    # a few more frames so timers redraw the last events
    QTimer.singleShot(300, loop.quit)
    loop.exec()
    try:  # written beside the target, renamed into place: never a half-written PNG
        with atomic_path(args.out) as part:
            if not window.grab().save(str(part), "PNG"):
                raise OSError(args.out)
        ok = True
    except OSError:
        ok = False
    if hasattr(panel, "shutdown"):
        panel.shutdown()
    window.close()
    tmp.cleanup()
    if not ok:
        print(f"snn-explorer screenshot: error: could not write {args.out}", file=sys.stderr)
        return 1
    print(args.out)
    return 0
