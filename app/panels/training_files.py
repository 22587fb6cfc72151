"""Files of the Training tab: config load/save, plot export, checkpoint export, HTML report,
and "Export model..." (NIR, ONNX, TorchScript through ``engine.export.job.export_job``).

:class:`TrainingFiles` is a collaborator of :class:`app.panels.training.TrainingPanel`
(``panel.files``): it wires the panel's file buttons and menus to itself and reads the panel's
``history``, views, ``setup`` and ``context``; the methods without a dialog are what tests and
scripts call.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.plotting import export_plot
from engine.errors import SnnError
from engine.train.config import load_config, save_config
from engine.train.run_folder import CHECKPOINT_FILE, CONFIG_FILE, checkpoint_for_prediction


class TrainingFiles:
    """Config files and exports of a TrainingPanel (its ``history``, ``setup``, ``context``, views)."""

    def __init__(self, panel):
        self.panel = panel

    def connect(self) -> None:
        """Wire the panel's file buttons, model-export menu and config load/save to this."""
        p = self.panel
        for fmt, action in p.model_actions.items():
            action.triggered.connect(lambda _=False, f=fmt: self._on_model_action(f))
        # building the model to list its formats costs time: only when the menu opens
        p.export_model_button.menu().aboutToShow.connect(self.sync_model_menu)
        p.export_plots_button.clicked.connect(self._on_export_plots_clicked)
        p.export_checkpoint_button.clicked.connect(self._on_export_checkpoint_clicked)
        p.report_button.clicked.connect(self._on_report_clicked)
        p.setup.loadRequested.connect(self._on_setup_load)
        p.setup.saveRequested.connect(self._on_setup_save)

    # ----- config files
    def _on_setup_load(self) -> None:
        p = self.panel
        path, _ = QFileDialog.getOpenFileName(p, "Load run config", "", "TOML (*.toml)")
        if path:
            self.load_config_file(path)

    def load_config_file(self, path: str) -> None:
        p = self.panel
        try:
            p.setup.set_config(load_config(path))
        except SnnError as exc:
            p.show_error(str(exc))

    def _on_setup_save(self) -> None:
        p = self.panel
        path, _ = QFileDialog.getSaveFileName(p, "Save run config", "run.toml", "TOML (*.toml)")
        if path:
            self.save_config_file(path)

    def save_config_file(self, path: str) -> None:
        p = self.panel
        try:
            save_config(p.setup.config(), path)
        except (SnnError, OSError) as exc:
            p.show_error(str(exc))

    # ----- exports
    def plots(self) -> dict:
        """Every plot of the tab by title (for export and the report)."""
        p = self.panel
        return {
            **p.curves.plots(),
            **p.confusion.plots(),
            **p.traces.plots(),
            **p.runs.plots(),
        }

    def export_plots(self, folder: str) -> list[str]:
        """Write every plot as PNG, SVG and CSV into ``folder``; returns the files."""
        os.makedirs(folder, exist_ok=True)
        out = []
        for name, target in self.plots().items():
            stem = os.path.join(folder, name.replace(" ", "_"))
            for suffix in (".png", ".svg", ".csv"):
                out.append(export_plot(target, stem + suffix))
        return out

    def _on_export_plots_clicked(self) -> None:
        p = self.panel
        folder = QFileDialog.getExistingDirectory(p, "Export every plot into")
        if folder:
            files = self.export_plots(folder)
            p.context.status(f"{len(files)} files written to {folder}")

    def export_checkpoint(self, dest: str) -> list[str]:
        """Copy the run's checkpoint (best.pt when there is one) and config.toml beside it."""
        p = self.panel
        src = Path(p.history.run_dir)
        ckpt = checkpoint_for_prediction(src) or src / CHECKPOINT_FILE
        dest_p = Path(dest)
        shutil.copyfile(ckpt, dest_p)
        config = dest_p.with_name(dest_p.stem + ".toml")
        shutil.copyfile(src / CONFIG_FILE, config)
        return [str(dest_p), str(config)]

    def _on_export_checkpoint_clicked(self) -> None:
        p = self.panel
        name = f"{Path(p.history.run_dir).name}.pt"
        path, _ = QFileDialog.getSaveFileName(p, "Export checkpoint", name, "Checkpoint (*.pt)")
        if path:
            try:
                files = self.export_checkpoint(path)
            except OSError as exc:
                QMessageBox.warning(p, "Export checkpoint", f"{path}: {exc.strerror}")
                return
            p.context.status(f"wrote {', '.join(files)}")

    def export_report(self, path: str) -> str:
        p = self.panel
        from app.report import write_report

        return write_report(path, p.history, self.plots())

    def _on_report_clicked(self) -> None:
        p = self.panel
        name = f"{Path(p.history.run_dir).name}.html"
        path, _ = QFileDialog.getSaveFileName(p, "Export report", name, "HTML (*.html)")
        if path:
            try:
                p.context.status(f"report written to {self.export_report(path)}")
            except (OSError, SnnError) as exc:
                p.show_error(f"{path}: {exc}")

    # ----- model export (engine.export.job)
    def export_checkpoint_path(self) -> str:
        """The checkpoint exports use: the run's best.pt, else its latest checkpoint."""
        p = self.panel
        run = Path(p.history.run_dir) if p.history.run_dir else None
        if run is None:
            return ""
        ckpt = checkpoint_for_prediction(run)
        return "" if ckpt is None else str(ckpt)

    def sync_model_menu(self) -> None:
        """Enable the formats the open run's model can be written in (reason as tooltip)."""
        p = self.panel
        from engine.export.job import FORMATS, available_formats

        ckpt = "" if p.is_running() else self.export_checkpoint_path()
        reasons: dict[str, str | None] = dict.fromkeys(FORMATS, "no finished run is open")
        if ckpt:
            try:
                reasons = available_formats(ckpt)
            except SnnError as exc:
                reasons = dict.fromkeys(FORMATS, str(exc))
        for fmt, action in p.model_actions.items():
            action.setEnabled(reasons.get(fmt) is None)
            action.setToolTip(reasons.get(fmt) or f"write the model as {fmt}, then check it")

    def export_model(self, fmt: str, out: str):
        """Run ``engine.export.job.export_job`` on a worker; the result goes to the log."""
        p = self.panel
        from engine.export.job import export_job

        ckpt = self.export_checkpoint_path()
        if not ckpt or p.jobs.busy("export"):
            return None
        p.history.log.append(f"exporting {ckpt} as {fmt} to {out}...")
        p.redraw()
        return p.jobs.start(
            "export",
            lambda stop: export_job(ckpt, fmt, out, stop=stop),
            on_finished=self._on_export_finished,
            on_failed=self._on_export_failed,
            background=True,
        )

    def _on_export_finished(self, result) -> None:
        p = self.panel
        if result is None:
            p.history.log.append("export stopped")
        else:
            p.history.log += result.summary().splitlines()
            state = "checked" if result.ok else "written, but a check FAILED"
            p.context.status(f"{result.path}: {state}")
        p.redraw()

    def _on_export_failed(self, message: str) -> None:
        p = self.panel
        p.history.log.append(f"export failed: {message}")
        p.show_error(message)
        p.redraw()

    def _on_model_action(self, fmt: str) -> None:
        p = self.panel
        from engine.export.job import default_export_path

        ckpt = self.export_checkpoint_path()
        suggested = str(default_export_path(ckpt, fmt)) if ckpt else ""
        path, _ = QFileDialog.getSaveFileName(p, f"Export model as {fmt}", suggested)
        if path:
            p.tabs.setCurrentWidget(p.log_view)
            self.export_model(fmt, path)
