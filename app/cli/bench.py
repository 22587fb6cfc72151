"""``snn-explorer bench``: how fast the app trains and infers, against the snnTorch-loop reference.

Runs :func:`engine.bench.suite.run_bench` (each training configuration in a fresh subprocess) and
prints a table, or the whole result as JSON with ``--json``. ``--quick`` runs tiny sizes and few
repetitions (seconds, for tests); the full run takes a few minutes on two cores.
"""

from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    from app.bench_sections import APP_SECTIONS
    from engine.bench.suite import EXTRA_PATHS, PATHS, SECTIONS

    p = sub.add_parser(
        "bench",
        help="time training steps, inference and features against the snnTorch reference",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions")
    names = ", ".join(
        f"{s.name}{'' if s.default else ' (opt-in)'}" for s in SECTIONS + APP_SECTIONS
    )
    p.add_argument(
        "--sections",
        metavar="A,B",
        help=f"comma-separated sections to run (default: all but the opt-in ones): {names}",
    )
    p.add_argument(
        "--paths",
        metavar="A,B",
        help=f"training paths to time (default: {','.join(PATHS)}; also {','.join(EXTRA_PATHS)}: "
        "the app's default model options)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--reps", type=int, help="timed training steps per configuration")
    p.set_defaults(func=run)


def _split(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def run(args) -> int:
    from dataclasses import replace

    from app.bench_sections import APP_SECTIONS
    from engine.bench.suite import (
        EXTRA_PATHS,
        PATHS,
        SECTIONS,
        BenchOptions,
        quick_options,
        run_bench,
    )
    from engine.device import resolve_device
    from engine.errors import ConfigError

    opts = quick_options() if args.quick else BenchOptions()
    paths = _split(args.paths) or opts.paths
    known = PATHS + EXTRA_PATHS
    bad = sorted(set(paths) - set(known))
    if bad:
        raise ConfigError(f"--paths: {', '.join(bad)} unknown; choose from {', '.join(known)}")
    opts = replace(
        opts,
        device=str(resolve_device(args.device)),
        sections=_split(args.sections),
        paths=paths,
        reps=args.reps or opts.reps,
    )
    progress = None if args.json else (lambda name: print(f"... {name}", file=sys.stderr))
    result = run_bench(opts, sections=SECTIONS + APP_SECTIONS, progress=progress)
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        print(format_report(result))
    return 0


def _fmt(v, spec: str = ".3f") -> str:
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def format_report(result: dict) -> str:
    """A human-readable summary of a ``run_bench`` result."""
    m = result["machine"]
    lines = [
        f"machine: {m.get('cores')} cores, {m.get('cpu_capability')}"
        f"{' + bf16' if m.get('cpu_bf16') else ''}, torch {m.get('torch')}"
        f"{', ' + m['cuda'] if m.get('cuda') else ''}; load average {m.get('load_average')}",
    ]
    sections = result["sections"]
    for name, sec in sections.items():
        status = sec.get("status")
        if name == "train_step" and status == "ok":
            lines.append("")
            lines.append(
                f"{'training step':30s} {'path':15s} {'median s':>9s} {'cpu s':>8s} "
                f"{'peak +MiB':>10s} {'speed-up':>9s} {'memory':>7s}"
            )
            for row in (v for k, v in sec.items() if isinstance(v, dict)):
                for path, r in row.items():
                    if not isinstance(r, dict):
                        continue
                    if r.get("status") != "ok":
                        lines.append(f"{row['label']:30s} {path:15s} {r.get('status')}")
                        continue
                    mark = path + (" *" if path == row.get("default_path") else "")
                    lines.append(
                        f"{row['label']:30s} {mark:15s} {_fmt(r['median_s']):>9s} "
                        f"{_fmt(r['cpu_median_s']):>8s} {_fmt(r['peak_increase_mib'], '.0f'):>10s} "
                        f"{_fmt(r.get('speedup_vs_reference'), '.2f'):>9s} "
                        f"{_fmt(r.get('memory_ratio_vs_reference'), '.2f'):>7s}"
                    )
            lines.append("* the path snn-explorer train takes here by default (amp = auto)")
        elif name == "inference" and status == "ok":
            paths = [p for p in ("reference", "app", "app_bf16") if p in sec]
            parts = [f"{p} {sec[p]['median_ms']:.2f} ms" for p in paths]
            lines.append(f"\ninference ({sec['case']}): " + ", ".join(parts))
        elif name == "equivalence" and status == "ok":
            for p in ("app",):
                e = sec[p]
                lines.append(
                    f"equivalence ({p} vs reference, {sec['case']}): spikes equal "
                    f"{e['spikes_equal']}, max |dU| {e['max_membrane_diff']:.2e}, "
                    f"max relative grad diff {e['max_grad_diff_rel']:.2e}"
                )
        elif name == "twins" and status == "ok":
            lines.append(
                f"\ntrain step, spiking vs twin (default precision {sec['default_precision']}):"
            )
            for r in (v for v in sec.values() if isinstance(v, dict)):
                lines.append(
                    f"  {r['model']:9s} vs {r['twin']:8s} {r['precision']:8s} "
                    f"{r['spiking_step_s']:.3f} / {r['twin_step_s']:.3f} s = {r['ratio']:.2f}x"
                )
        else:
            body = {k: v for k, v in sec.items() if k not in ("status", "seconds")}
            lines.append(f"\n{name} ({status}): {json.dumps(body, default=str)}")
    return "\n".join(lines)
