"""``snn-explorer record``: record N-second clips from the microphone into a folder data set.

Clips go to ``OUT/LABEL/LABEL_0001.wav``... (16-bit WAV, one sub-folder per class), so the
folder trains directly: ``snn-explorer train --data folder:OUT``. ``--background`` records one
long take and cuts it into clips (a background-noise class without gaps); ``--from-file`` does
the same with an existing recording.
"""

from __future__ import annotations

import math


def add_parser(sub) -> None:
    p = sub.add_parser(
        "record",
        help="record clips from the microphone into a folder data set (one folder per class)",
        description="Record COUNT clips of SECONDS each into OUT/LABEL/ as WAV files.",
    )
    p.add_argument("--out", help="data set folder (created if needed)")
    p.add_argument("--label", help="class name (becomes the sub-folder name)")
    p.add_argument("--seconds", type=float, default=1.0, metavar="S", help="clip length (1.0)")
    p.add_argument("--count", type=int, default=1, metavar="N", help="clips to record (1)")
    p.add_argument("--device", default=None, help="capture device: index or name (default: system)")
    p.add_argument("--rate", type=int, default=16000, help="sample rate in Hz (16000)")
    p.add_argument("--pause", type=float, default=1.0, metavar="S", help="pause between clips (1)")
    p.add_argument(
        "--background",
        action="store_true",
        help="one continuous take cut into clips (label defaults to 'background')",
    )
    p.add_argument("--from-file", default=None, metavar="FILE", help="cut FILE into clips instead")
    p.add_argument("--list-devices", action="store_true", help="list capture devices and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.errors import ConfigError
    from engine.live.recording import (
        BACKGROUND,
        ClipSaved,
        RecordLevel,
        RecordWaiting,
        add_background_from_file,
        class_counts,
        record_clips,
    )

    if args.list_devices:
        from app.cli.listen import print_devices

        return print_devices()
    if not args.out:
        raise ConfigError("--out is required (the data set folder)")
    label = args.label or (BACKGROUND if args.background or args.from_file else None)
    if not label:
        raise ConfigError("--label is required (the class name, e.g. --label yes)")
    if not (args.seconds > 0 and math.isfinite(args.seconds)) or args.count < 1:
        raise ConfigError("--seconds must be positive and --count at least 1")
    if args.from_file:
        paths = add_background_from_file(
            args.out, args.from_file, args.seconds, label, args.rate, max_clips=args.count
        )
        print(f"cut {args.from_file} into {len(paths)} clips in {paths[0].parent}")
    else:
        gen = record_clips(
            args.out,
            label,
            args.seconds,
            args.count,
            device=args.device,
            sample_rate=args.rate,
            pause_s=0.0 if args.background else args.pause,
            split=args.background,
        )
        total = args.count
        announced = waiting = -1
        try:
            for event in gen:
                if isinstance(event, RecordLevel) and event.clip != announced:
                    announced = event.clip
                    what = f"{total * args.seconds:g} s take" if args.background else "clip"
                    print(f"recording {what} {event.clip + 1}/{total}...", flush=True)
                elif isinstance(event, RecordWaiting) and event.clip != waiting:
                    waiting = event.clip
                    print(
                        f"get ready: clip {event.clip + 1} in {event.remaining_s:.1f} s", flush=True
                    )
                elif isinstance(event, ClipSaved):
                    peak = 20 * math.log10(max(event.peak, 1e-9))
                    print(
                        f"saved {event.path} ({event.seconds:g} s, {event.sample_rate} Hz, "
                        f"peak {peak:.0f} dBFS)",
                        flush=True,
                    )
        except KeyboardInterrupt:
            gen.close()
            print("stopped; the clips saved so far are kept")
    counts = class_counts(args.out)
    print("clips per class: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
