"""app.cli.interrupt: the first Ctrl-C (a real SIGINT) stops gently, the second aborts."""

import os
import signal
import threading

import pytest

from app.cli.interrupt import stop_on_ctrl_c


def test_first_ctrl_c_sets_stop_second_aborts_and_the_handler_is_restored():
    stop, said = threading.Event(), []
    before = signal.getsignal(signal.SIGINT)
    previous = stop_on_ctrl_c(stop, said.append, "stopping; Ctrl-C again to abort")
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set() and said == ["stopping; Ctrl-C again to abort"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert previous is before and signal.getsignal(signal.SIGINT) is before
