"""UI responsiveness while training: how late a 10 ms timer on the UI thread fires.

The real Training tab (shown, offscreen when there is no display) trains a real spiking model
on scikit-learn's bundled digits (no download) on its worker thread while a ``QTimer``
(``Qt.PreciseTimer``) asks to fire every ``interval_ms`` on the UI thread. The lateness of each
firing (time since the previous one minus the interval) is what a user feels as a sluggish
window: redraws, event delivery and GIL contention with the training thread all add to it.

``snn-explorer bench`` runs it in a subprocess (the engine never imports Qt)::

    python -m app.ui_bench --seconds 8 --json

prints one JSON object (the fields of :class:`UiLatency`). Goal: p95 < 20 ms, max < 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class UiLatency:
    """Lateness of a periodic UI-thread timer while a training run is going."""

    interval_ms: float
    seconds: float  # measuring time
    ticks: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    train_steps: int  # training steps done while measuring (proves training ran)
    redraws: int  # EventBuffer flushes while measuring
    redraw_p95_ms: float  # time one flush takes on the UI thread (events + plot updates)
    redraw_max_ms: float
    stop_latency_s: float  # Stop -> worker thread ended, after the measurement
    idle_p95_ms: float  # the same timer before training started (machine baseline)
    idle_max_ms: float
    model: str
    device: str


def lateness_stats(times_s: list[float], interval_ms: float) -> tuple[float, float, float]:
    """``(p50, p95, max)`` lateness in ms from the timer's firing times (seconds)."""
    gaps = np.diff(np.asarray(times_s, dtype=float)) * 1000.0
    late = np.maximum(gaps - interval_ms, 0.0)
    if late.size == 0:
        return float("nan"), float("nan"), float("nan")
    return (
        float(np.percentile(late, 50)),
        float(np.percentile(late, 95)),
        float(late.max()),
    )


def wait_ms(loop, ms: int) -> None:
    """Run the Qt event ``loop`` for ``ms`` milliseconds."""
    from PySide6.QtCore import QTimer

    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def stamping_timer(interval_ms: float):
    """A precise ``QTimer`` (not started) that appends the time it fires, in seconds since the
    returned ``QElapsedTimer`` started, to ``stamps``: ``(timer, stamps, clock)``."""
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    clock = QElapsedTimer()
    clock.start()
    stamps: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(int(interval_ms))
    timer.timeout.connect(lambda: stamps.append(clock.nsecsElapsed() / 1e9))
    return timer, stamps, clock


def tick_times(loop, seconds: float, interval_ms: float) -> list[float]:
    """The firing times of a ``interval_ms`` timer over ``seconds`` of the event loop."""
    timer, stamps, _clock = stamping_timer(interval_ms)
    timer.start()
    wait_ms(loop, int(seconds * 1000))
    timer.stop()
    return stamps


def measure_ui_lateness(
    seconds: float = 8.0,
    interval_ms: float = 10.0,
    model: str = "csnn",
    steps: int = 10,
    batch: int = 32,
    device: str = "cpu",
    warmup_timeout_s: float = 120.0,
    idle_seconds: float = 2.0,
) -> UiLatency:
    """Train on the Training tab and measure the UI timer's lateness for ``seconds``
    (after ``idle_seconds`` of the same measurement with nothing training, for reference).

    Needs a QApplication (one is made when absent; offscreen when there is no display).
    """
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QSettings

    from app.context import AppContext
    from app.main_window import make_app, settle_heap
    from app.panels.training import TrainingPanel
    from engine.train.config import RunConfig
    from engine.train.recorded_run import digits_feature_set

    _app = make_app()
    tmp = tempfile.TemporaryDirectory(prefix="snn-explorer-uibench-")
    settings = QSettings(os.path.join(tmp.name, "s.ini"), QSettings.Format.IniFormat)
    panel = TrainingPanel(AppContext(settings))
    panel.resize(1280, 820)
    panel.show()
    settle_heap()  # as the app does once its window is up
    loop = QEventLoop()

    def wait(ms: int) -> None:
        wait_ms(loop, ms)

    # the same timer with nothing training: what the machine itself allows
    _i50, idle_p95, idle_max = lateness_stats(
        tick_times(loop, idle_seconds, interval_ms), interval_ms
    )
    cfg = RunConfig(
        model=model, steps=steps, batch=batch, epochs=1000, device=device, encoder="direct"
    )
    data = digits_feature_set(16)
    handle = panel.start(cfg, os.path.join(tmp.name, "run"), data=data)
    if handle is None:
        raise RuntimeError(panel.message.text() or "the training did not start")
    deadline = time.monotonic() + warmup_timeout_s
    while len(panel.history.step_x) < 2 and time.monotonic() < deadline and panel.is_running():
        wait(50)
    if len(panel.history.step_x) < 2:
        panel.shutdown()
        raise RuntimeError(f"training did not reach its second step ({panel.message.text()})")
    steps_before, redraws_before = len(panel.history.step_x), panel.redraw_count

    stamps = tick_times(loop, seconds, interval_ms)
    p50, p95, worst = lateness_stats(stamps, interval_ms)
    train_steps = len(panel.history.step_x) - steps_before
    n_redraws = panel.redraw_count - redraws_before
    drawn = np.asarray(list(panel.redraw_ms)[-max(n_redraws, 1) :], dtype=float)

    t0 = time.perf_counter()
    panel.request_stop()
    while panel.is_running() and time.perf_counter() - t0 < 60:
        wait(10)
    stop_latency = time.perf_counter() - t0
    panel.shutdown()
    dev = panel.history.device or device
    panel.close()
    panel.deleteLater()
    tmp.cleanup()
    return UiLatency(
        interval_ms=float(interval_ms),
        seconds=float(seconds),
        ticks=len(stamps),
        p50_ms=p50,
        p95_ms=p95,
        max_ms=worst,
        train_steps=train_steps,
        redraws=n_redraws,
        redraw_p95_ms=float(np.percentile(drawn, 95)) if drawn.size else float("nan"),
        redraw_max_ms=float(drawn.max()) if drawn.size else float("nan"),
        stop_latency_s=stop_latency,
        idle_p95_ms=idle_p95,
        idle_max_ms=idle_max,
        model=model,
        device=dev,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="UI timer lateness while the Training tab trains")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--interval-ms", type=float, default=10.0)
    p.add_argument("--model", default="csnn")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    r = measure_ui_lateness(args.seconds, args.interval_ms, args.model, device=args.device)
    if args.json:
        print(json.dumps(asdict(r)))
    else:
        print(
            f"UI timer ({r.interval_ms:g} ms) lateness while training {r.model} on {r.device}: "
            f"p50 {r.p50_ms:.1f} ms, p95 {r.p95_ms:.1f} ms, max {r.max_ms:.1f} ms "
            f"({r.ticks} ticks, {r.train_steps} training steps, {r.redraws} redraws in "
            f"{r.seconds:g} s; a redraw takes p95 {r.redraw_p95_ms:.1f} ms, max "
            f"{r.redraw_max_ms:.1f} ms); idle baseline p95 {r.idle_p95_ms:.1f} ms, max "
            f"{r.idle_max_ms:.1f} ms; stop took {r.stop_latency_s:.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
