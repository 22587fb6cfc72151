"""``snn-explorer listen``: classify what the microphone hears, printing predictions as they come.

Every hop the window ending there (as long as the model's clip) is classified; each sound (the
level rising above the noise floor and falling back) is also classified once, in a window placed
on it as training placed clips, and printed with a ``*``. ``--file`` replays an audio file
through the same classifier instead of the microphone.
"""

from __future__ import annotations

import math
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "listen",
        help="classify microphone audio live with a trained checkpoint",
        description="Print a prediction every hop and one per sound heard, until Ctrl-C "
        "(or --seconds).",
    )
    p.add_argument(
        "--checkpoint", metavar="CKPT", help="checkpoint.pt or best.pt of an audio model"
    )
    p.add_argument("--device", default=None, help="capture device: index or name (default: system)")
    p.add_argument("--hop", type=float, default=0.25, metavar="S", help="seconds between windows")
    p.add_argument("--window", type=float, default=None, metavar="S", help="window (default: clip)")
    p.add_argument("--seconds", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--sounds-only", action="store_true", help="print only the per-sound lines")
    p.add_argument(
        "--file", default=None, help="classify this audio file instead of the microphone"
    )
    p.add_argument("--list-devices", action="store_true", help="list capture devices and exit")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="P",
        help="say 'unknown' when the top probability is under P (default 0.5; 0 = never)",
    )
    p.set_defaults(func=run)


def print_devices() -> int:
    from engine.live.listen import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("no capture devices (connect a microphone)")
    for d in devices:
        mark = "*" if d.is_default else " "
        print(f"{mark} {d.label}  {d.channels} ch, {d.default_rate:g} Hz")
    return 0


def _positive(name: str, value) -> None:
    from engine.errors import ConfigError

    if value is not None and not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"--{name} must be a positive number of seconds, not {value}")


def _line(event, show_windows: bool) -> str | None:
    from engine.live.listen import SoundEvent, WindowPrediction

    if isinstance(event, SoundEvent):
        guess = f", best guess {event.class_name!r}" if event.said != event.class_name else ""
        return (
            f"* {event.start_s:7.2f}-{event.end_s:.2f} s  heard {event.said!r} "
            f"({event.confidence:.2f}{guess})"
        )
    if isinstance(event, WindowPrediction) and show_windows:
        skipped = f", {event.dropped} skipped" if event.dropped else ""
        # a silent window still gets a class; say it is silence rather than name one
        said = "(quiet)     " if event.quiet else f"{event.said:<12}"
        return (
            f"  {event.end_s:7.2f} s  {said} {event.confidence:.2f}  "
            f"[{event.latency_ms:.1f} ms{skipped}]"
        )
    return None


def run(args) -> int:
    from engine.errors import ConfigError

    if args.list_devices:
        return print_devices()
    if not args.checkpoint:
        raise ConfigError("--checkpoint is required (a trained audio model: checkpoint.pt)")
    for name in ("hop", "window", "seconds"):
        _positive(name, getattr(args, name))
    from engine.train.unknown import DEFAULT_THRESHOLD

    if args.threshold is None:
        args.threshold = DEFAULT_THRESHOLD
    if not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold {args.threshold} must be between 0 and 1")
    from engine.train.checkpoint import Predictor

    predictor = Predictor.from_checkpoint(args.checkpoint)
    if predictor.feature_config is None or predictor.is_image:
        raise ConfigError(f"{args.checkpoint}: this model classifies images, not sound")
    if predictor.chance_note:
        print(f"snn-explorer listen: note: {predictor.chance_note}", file=sys.stderr)
    show_windows = not args.sounds_only
    if args.file:
        return _classify_file(predictor, args, show_windows)
    from engine.live.listen import LiveConfig, LiveStarted, LiveStopped, listen

    config = LiveConfig(
        device=args.device,
        window_s=args.window,
        hop_s=args.hop,
        seconds=args.seconds,
        audio_events=False,
        threshold=args.threshold,
    )
    gen = listen(predictor, config)
    summary = None
    try:
        for event in gen:
            if isinstance(event, LiveStarted):
                print(
                    f"listening on {event.device} at {event.sample_rate} Hz: window "
                    f"{event.window_s:g} s, hop {event.hop_s:g} s, classes "
                    f"{', '.join(event.class_names)} (Ctrl-C stops)",
                    flush=True,
                )
            elif isinstance(event, LiveStopped):
                summary = event
            elif (text := _line(event, show_windows)) is not None:
                print(text, flush=True)
    except KeyboardInterrupt:
        gen.close()  # closes the capture stream
    if summary is not None:
        print(
            f"{summary.predictions} windows, {summary.sounds} sounds; latency median "
            f"{summary.median_ms:.1f} ms, p95 {summary.p95_ms:.1f} ms"
            + (f"; {summary.dropped} windows skipped" if summary.dropped else ""),
            file=sys.stderr,
        )
    return 0


def _classify_file(predictor, args, show_windows: bool) -> int:
    from engine.audio.load import load_audio
    from engine.live.listen import classify_waveform

    y, sr = load_audio(args.file)
    events = classify_waveform(
        predictor, y, sr, window_s=args.window, hop_s=args.hop, threshold=args.threshold
    )
    for event in events:
        text = _line(event, show_windows or len(events) == 1)
        if text is not None:
            print(text)
    return 0
