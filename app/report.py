"""HTML report of a training run: one self-contained file (config, metrics tables, plots as
base64 PNG) that any browser opens without the app.

``write_report`` takes the plots the Training tab shows; ``report_for_run`` builds them from a
run folder alone (it needs a QApplication, not a visible window).
"""

from __future__ import annotations

import base64
import html
import math
import os
import tempfile
import time
from pathlib import Path

from app.plotting import export_plot
from engine.atomic import write_atomic
from engine.train.history import RunHistory
from engine.train.run_folder import COMPARISON_COLUMNS, comparison_row, read_run

_CSS = """
body { font-family: DejaVu Sans, Arial, sans-serif; margin: 2em; color: #222; max-width: 1200px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; } td.k, th.k { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 560px; border: 1px solid #ddd; }
figure.wide img { max-width: 1140px; }
figcaption { font-size: 0.85em; color: #555; }
"""


def _e(v) -> str:
    return html.escape(str(v))


def _fmt(v) -> str:
    if isinstance(v, float):
        if not math.isfinite(v):
            return ""
        return f"{v:.4g}"
    return _e(v)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flatten(v, f"{prefix}{k}.") if v else [(f"{prefix}{k}", "(defaults)")]
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _table(header: list[str], rows: list[list], key_cols: int = 1) -> str:
    head = "".join(
        f'<th class="{"k" if i < key_cols else ""}">{_e(h)}</th>' for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"k" if i < key_cols else ""}">{_fmt(v)}</td>' for i, v in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _png_b64(target, folder: str, name: str) -> str | None:
    path = os.path.join(folder, f"{len(os.listdir(folder))}.png")
    try:
        export_plot(target, path, width=1100)
        return base64.b64encode(Path(path).read_bytes()).decode("ascii")
    except (OSError, ValueError, RuntimeError):
        return None


def write_report(path: str | os.PathLike, history: RunHistory, plots: dict) -> str:
    """Write the HTML report of ``history`` (with ``plots``: title -> plot widget) to ``path``."""
    h = history
    run = read_run(h.run_dir) if h.run_dir and os.path.isdir(h.run_dir) else None
    title = f"snn-explorer run {Path(h.run_dir).name}" if h.run_dir else "snn-explorer run"
    parts = [f"<h1>{_e(title)}</h1>"]
    parts.append(
        f"<p>Model <b>{_e(h.model)}</b>{' (spiking)' if h.spiking else ''}, {h.n_params:,} "
        f"parameters, device {_e(h.device or '?')}, status <b>{_e(h.status or '?')}</b>. "
        f"Run folder: <code>{_e(h.run_dir)}</code>. Written {time.strftime('%Y-%m-%d %H:%M')}.</p>"
    )
    if run is not None:
        cells = comparison_row(run).cells()
        parts.append("<h2>Summary</h2>" + _table(list(COMPARISON_COLUMNS), [cells], key_cols=3))
    parts.append("<h2>Configuration</h2>" + _table(["key", "value"], _flatten(h.config)))
    if h.epochs:
        names = list(h.layer_series("firing_rates"))
        header = ["epoch", "train loss", "train acc", "val loss", "val acc", "lr", "s/epoch"]
        header += [f"rate {n}" for n in names] + [f"dead {n}" for n in names]
        rows = []
        for r in h.epochs:
            rows.append(
                [r.get("epoch"), r.get("train_loss"), r.get("train_acc"), r.get("val_loss")]
                + [r.get("val_acc"), r.get("lr"), r.get("epoch_time_s")]
                + [(r.get("firing_rates") or {}).get(n) for n in names]
                + [(r.get("dead_fractions") or {}).get(n) for n in names]
            )
        parts.append("<h2>Metrics per epoch</h2>" + _table(header, rows))
    if h.confusion is not None and h.prf is not None:
        p, r, f = h.prf
        support = h.confusion.sum(1)
        names = h.class_names or [str(i) for i in range(len(p))]
        rows = [
            [
                names[i] if i < len(names) else i,
                float(p[i]),
                float(r[i]),
                float(f[i]),
                int(support[i]),
            ]
            for i in range(len(p))
        ]
        parts.append(
            f"<h2>Per class ({_e(h.confusion_title)})</h2>"
            + _table(["class", "precision", "recall", "F1", "examples"], rows)
        )
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, target in plots.items():
            data = _png_b64(target, tmp, name)
            if data is None:
                continue
            wide = ' class="wide"' if name in ("tracked example", "runs overlay") else ""
            figures.append(
                f'<figure{wide}><img alt="{_e(name)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{_e(name)}</figcaption></figure>"
            )
    if figures:
        parts.append("<h2>Plots</h2>" + "\n".join(figures))
    if h.log:
        tail = "\n".join(h.log[-40:])
        parts.append(f"<h2>Log</h2><pre>{_e(tail)}</pre>")
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
    return str(write_atomic(path, doc))


def report_for_run(run_dir: str | os.PathLike, path: str | os.PathLike) -> str:
    """Write the report of a run folder without the Training tab (a QApplication must exist)."""
    from app.panels.training_traces import TracesView
    from app.panels.training_views import ConfusionView, CurvesView

    h = RunHistory.from_run(read_run(run_dir))
    curves, confusion, traces = CurvesView(), ConfusionView(), TracesView()
    for w in (curves, confusion, traces):
        w.resize(1100, 700)
    curves.refresh(h)
    confusion.refresh(h)
    traces.show_traces(h.traces, h.class_names)
    plots = {**curves.plots(), **confusion.plots(), **traces.plots()}
    return write_report(path, h, plots)
