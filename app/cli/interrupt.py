"""Ctrl-C for the long commands (train, train --cv, sweep): the first stops gently, a second aborts.

Not a sub-command: the helper those commands share.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def stop_on_ctrl_c(stop: threading.Event, say: Callable[[str], None], message: str):
    """Make the first Ctrl-C set ``stop`` (and ``say(message)``) and a second one raise
    KeyboardInterrupt. Returns the previous SIGINT handler, for the caller to restore."""

    def on_sigint(_sig, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        say(message)

    return signal.signal(signal.SIGINT, on_sigint)
