"""Soak run: the whole window open, the Training tab training and the Live tab classifying, for
minutes; does memory stay flat and does the window stay responsive?

Steps (all through the real tabs of :class:`app.main_window.MainWindow`, offscreen when there is
no display):

1. write a small sound data set (three classes of noisy tones) in a temporary folder;
2. train a first model on it for one epoch on the Training tab; its checkpoint reaches the Live
   tab the way a user's does (the shared context);
3. start a long training run (``epochs`` large) on the Training tab and, at the same time, keep
   the Live tab classifying: from the microphone when ``microphone=True`` and one exists, else a
   3-second clip again and again (the same windows and model calls as live audio);
4. every ``sample_s`` record the process's resident memory (RSS); a ``QTimer`` (PreciseTimer)
   asks to fire every ``interval_ms`` on the UI thread and its lateness is what a user feels.

Memory growth is measured from the end of a warm-up (the first ``warmup_s``: allocator pools,
kernels and plots settle) to the end, and as a least-squares slope in MB per minute.

``python -m app.soak --minutes 10 --json`` prints one JSON object (the fields of
:class:`SoakResult`); ``app.bench_sections.soak_section`` runs that for ``snn-explorer bench``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from app.ui_bench import lateness_stats, stamping_timer, tick_times, wait_ms


@dataclass(frozen=True)
class SoakResult:
    """What a soak run measured (memory in MB, times in ms unless named otherwise)."""

    minutes: float  # measured time (after the first model was trained)
    model: str
    classify_mode: str  # "microphone" or "file loop"
    rss_start_mb: float  # when the measured time began
    rss_after_warmup_mb: float
    rss_end_mb: float
    rss_peak_mb: float
    rss_growth_mb: float  # end minus after warm-up
    rss_slope_mb_per_min: float  # least-squares slope after warm-up
    ui_ticks: int
    ui_p50_ms: float
    ui_p95_ms: float
    ui_max_ms: float
    ui_p95_first_minute_ms: float
    ui_p95_last_minute_ms: float
    ui_idle_p95_ms: float  # the same timer with the window open and nothing running (baseline)
    ui_idle_max_ms: float
    train_steps: int
    train_epochs: int
    predictions: int  # classifications finished (files) or windows predicted (microphone)
    python_objects_growth: int  # gc-tracked objects, end minus after warm-up
    object_growth_by_type: tuple[tuple[str, int], ...]  # the types that grew most
    threads_start: int  # OS threads of the process
    threads_end: int
    errors: tuple[str, ...] = ()
    rss_samples: tuple[tuple[float, float], ...] = field(default=(), repr=False)  # (s, MB)


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def os_threads() -> int:
    """Threads of this process (Qt's, PyTorch's and Python's; Linux ``/proc``, else Python's)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return threading.active_count()


def write_tones(folder: str, per_class: int = 30, seconds: float = 0.6, sr: int = 8000) -> str:
    """Three classes of noisy tones as a ``folder:`` data set; returns the folder."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    for f0 in (300, 700, 1500):
        os.makedirs(os.path.join(folder, f"tone{f0}"), exist_ok=True)
        for i in range(per_class):
            y = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.05 * rng.standard_normal()) * t)
            y += 0.05 * rng.standard_normal(n)
            path = os.path.join(folder, f"tone{f0}", f"{i:03d}.wav")
            sf.write(path, y.astype(np.float32), sr, subtype="PCM_16")
    return folder


def _clip(path: str, sr: int = 8000) -> str:
    import soundfile as sf

    t = np.arange(3 * sr) / sr
    f = np.where(t < 1, 300, np.where(t < 2, 700, 1500))
    sf.write(path, (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr, subtype="PCM_16")
    return path


def _slope(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 3:
        return float("nan")
    t = np.array([s[0] for s in samples]) / 60.0
    m = np.array([s[1] for s in samples])
    return float(np.polyfit(t, m, 1)[0])


def run_soak(
    minutes: float = 10.0,
    *,
    model: str = "csnn",
    steps: int = 10,
    batch: int = 16,
    interval_ms: float = 10.0,
    sample_s: float = 5.0,
    warmup_s: float | None = None,
    idle_s: float = 5.0,
    microphone: bool = False,
    device: str = "cpu",
    progress=None,
) -> SoakResult:
    """Train and classify with the window open for ``minutes``; see the module docstring.

    ``progress(text)`` is called now and then (the command line prints it). Needs no display
    (offscreen) and no data download; ``microphone=True`` listens when a capture device exists.
    """
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from app.main_window import MainWindow, make_app, settle_heap
    from engine.train.config import RunConfig

    say = progress or (lambda _text: None)
    _app = make_app()
    tmp = tempfile.TemporaryDirectory(prefix="snn-explorer-soak-")
    root = tmp.name
    settings = QSettings(os.path.join(root, "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    window.show()
    settle_heap()  # as the app does once its window is up
    training, live = window.panels["training"], window.panels["live"]
    loop = QEventLoop()
    errors: list[str] = []

    def wait(ms: int) -> None:
        wait_ms(loop, ms)

    def wait_until(cond, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not cond() and time.monotonic() < deadline:
            wait(50)
        return cond()

    # what this machine allows with the window open and nothing running
    _i50, idle_p95, idle_max = lateness_stats(tick_times(loop, idle_s, interval_ms), interval_ms)
    data = write_tones(os.path.join(root, "tones"))
    clip = _clip(os.path.join(root, "clip.wav"))
    base = RunConfig(
        data=f"folder:{data}", model=model, steps=steps, batch=batch, device=device, seed=0
    )
    # 1) a first model, trained on the Training tab; its checkpoint reaches the Live tab
    say("training a first model (1 epoch)")
    window.show_tab("training")
    if training.start(base.replace(epochs=1), os.path.join(root, "first")) is None:
        raise RuntimeError(training.message.text() or "the first training did not start")
    if not wait_until(lambda: not training.is_running(), 900) or live.predictor is None:
        raise RuntimeError(
            f"the first model did not reach the Live tab ({training.message.text()})"
        )

    # 2) the long run, and classification at the same time
    say(f"soak: training and classifying for {minutes:g} min")
    if training.start(base.replace(epochs=100_000, seed=1), os.path.join(root, "long")) is None:
        raise RuntimeError(training.message.text() or "the long training did not start")
    window.show_tab("live")
    use_mic = bool(microphone and live.devices)
    predictions = [0]
    if use_mic:
        if not live.start():
            errors.append("the microphone did not start")
            use_mic = False

    tick, stamps, clock = stamping_timer(interval_ms)

    samples: list[tuple[float, float]] = []
    warm = float(warmup_s) if warmup_s is not None else min(60.0, 0.2 * minutes * 60)
    marks: dict[str, float | int] = {}

    def sample() -> None:
        t = clock.nsecsElapsed() / 1e9
        samples.append((t, rss_mb()))
        if "objects" not in marks and t >= warm:
            gc.collect()
            objects = gc.get_objects()
            marks["objects"] = len(objects)
            marks["types"] = Counter(type(o).__name__ for o in objects)
            del objects
            marks["rss_warm"] = samples[-1][1]
        if int(t // 60) > marks.get("minute", 0):  # one line a minute
            marks["minute"] = int(t // 60)
            say(f"{t / 60:.0f} min: RSS {samples[-1][1]:.0f} MB, {predictions[0]} predictions")

    sampler = QTimer()
    sampler.setInterval(int(sample_s * 1000))
    sampler.timeout.connect(sample)

    busy_before = [False]

    def drive() -> None:
        """Keep classifying: count each finished file and start the next one."""
        if use_mic:
            predictions[0] = live.summary.predictions if live.summary else len(live.latencies)
            return
        busy = live._busy()
        if busy_before[0] and not busy:
            predictions[0] += 1
            if live.error:
                errors.append(live.error)
        if not busy:
            live.classify_path(clip)
        busy_before[0] = live._busy()

    driver = QTimer()
    driver.setInterval(100)
    driver.timeout.connect(drive)

    threads_start = os_threads()
    steps_before = len(training.history.step_x)
    samples.append((0.0, rss_mb()))
    tick.start()
    sampler.start()
    driver.start()
    wait(int(minutes * 60 * 1000))
    tick.stop()
    sampler.stop()
    driver.stop()
    sample()
    gc.collect()
    objects = gc.get_objects()
    objects_end = len(objects)
    types_end = Counter(type(o).__name__ for o in objects)
    del objects
    types_end.subtract(marks.get("types", types_end))
    grown = tuple((k, n) for k, n in types_end.most_common(8) if n > 0)
    train_steps = len(training.history.step_x) - steps_before
    train_epochs = len(training.history.epochs)
    threads_end = os_threads()
    if training.message.text():
        errors.append(training.message.text())

    # wind down: stop both jobs, close the window
    if use_mic:
        live.stop()
    training.request_stop()
    wait_until(lambda: not training.is_running() and not live._busy(), 120)
    window.close()
    window.deleteLater()
    tmp.cleanup()

    late = np.maximum(np.diff(np.asarray(stamps)) * 1000.0 - interval_ms, 0.0)
    t_late = np.asarray(stamps[1:])
    first = late[t_late < 60.0]
    last = late[t_late >= t_late[-1] - 60.0] if len(t_late) else late
    p50, p95, worst = lateness_stats(stamps, interval_ms)
    after = [s for s in samples if s[0] >= warm] or samples
    rss_warm = float(marks.get("rss_warm", after[0][1]))
    return SoakResult(
        minutes=float(minutes),
        model=model,
        classify_mode="microphone" if use_mic else "file loop",
        rss_start_mb=round(samples[0][1], 1),
        rss_after_warmup_mb=round(rss_warm, 1),
        rss_end_mb=round(samples[-1][1], 1),
        rss_peak_mb=round(max(s[1] for s in samples), 1),
        rss_growth_mb=round(samples[-1][1] - rss_warm, 1),
        rss_slope_mb_per_min=round(_slope(after), 3),
        ui_ticks=len(stamps),
        ui_p50_ms=round(p50, 2),
        ui_p95_ms=round(p95, 2),
        ui_max_ms=round(worst, 1),
        ui_p95_first_minute_ms=round(float(np.percentile(first, 95)), 2) if first.size else np.nan,
        ui_p95_last_minute_ms=round(float(np.percentile(last, 95)), 2) if last.size else np.nan,
        ui_idle_p95_ms=round(idle_p95, 2),
        ui_idle_max_ms=round(idle_max, 1),
        train_steps=train_steps,
        train_epochs=train_epochs,
        predictions=predictions[0],
        python_objects_growth=objects_end - int(marks.get("objects", objects_end)),
        object_growth_by_type=grown,
        threads_start=threads_start,
        threads_end=threads_end,
        errors=tuple(dict.fromkeys(errors)),
        rss_samples=tuple((round(t, 1), round(m, 1)) for t, m in samples),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Soak: train and classify with the window open; memory growth and UI lag"
    )
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--model", default="csnn")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--interval-ms", type=float, default=10.0)
    p.add_argument("--sample-s", type=float, default=5.0)
    p.add_argument("--warmup-s", type=float, default=None)
    p.add_argument("--microphone", action="store_true", help="listen when a microphone exists")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = p.parse_args(argv)
    import sys

    from engine.train.memory import keep_freed_memory

    keep_freed_memory()  # as the desktop app's entry point does (app.main_window.run_gui)
    r = run_soak(
        args.minutes,
        model=args.model,
        steps=args.steps,
        interval_ms=args.interval_ms,
        sample_s=args.sample_s,
        warmup_s=args.warmup_s,
        microphone=args.microphone,
        device=args.device,
        progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    if args.json:
        print(json.dumps(asdict(r)))
    else:
        print(
            f"soak {r.minutes:g} min ({r.model}, {r.classify_mode}): RSS {r.rss_start_mb:.0f} -> "
            f"{r.rss_after_warmup_mb:.0f} (warm) -> {r.rss_end_mb:.0f} MB, growth "
            f"{r.rss_growth_mb:+.1f} MB ({r.rss_slope_mb_per_min:+.2f} MB/min), peak "
            f"{r.rss_peak_mb:.0f} MB; UI timer lateness p50 {r.ui_p50_ms:.1f} / p95 "
            f"{r.ui_p95_ms:.1f} / max {r.ui_max_ms:.0f} ms (p95 first minute "
            f"{r.ui_p95_first_minute_ms:.1f}, last {r.ui_p95_last_minute_ms:.1f}; idle "
            f"baseline p95 {r.ui_idle_p95_ms:.1f} / max {r.ui_idle_max_ms:.0f} ms); "
            f"{r.train_steps} training steps, {r.train_epochs} epochs, {r.predictions} "
            f"predictions; threads {r.threads_start} -> {r.threads_end}; errors: "
            f"{'; '.join(r.errors) or 'none'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
