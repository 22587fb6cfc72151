"""Files of the Training tab: config load/save, plot export, checkpoint export, HTML report,
and "Export model..." (NIR, ONNX, TorchScript through ``engine.export.job.export_job``).

A mixin of :class:`app.panels.training.TrainingPanel` (it uses the panel's ``history``, views,
``setup`` and ``context``); the methods without a dialog are what tests and scripts call.
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


class TrainingFilesMixin:
    """Config files and exports (needs ``history``, ``setup``, ``context``, the views)."""

    # ----- config files
    def _on_setup_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load run config", "", "TOML (*.toml)")
        if path:
            self.load_config_file(path)

    def load_config_file(self, path: str) -> None:
        try:
            self.setup.set_config(load_config(path))
        except SnnError as exc:
            self._show_error(str(exc))

    def _on_setup_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save run config", "run.toml", "TOML (*.toml)")
        if path:
            self.save_config_file(path)

    def save_config_file(self, path: str) -> None:
        try:
            save_config(self.setup.config(), path)
        except (SnnError, OSError) as exc:
            self._show_error(str(exc))

    # ----- exports
    def plots(self) -> dict:
        """Every plot of the tab by title (for export and the report)."""
        return {
            **self.curves.plots(),
            **self.confusion.plots(),
            **self.traces.plots(),
            **self.runs.plots(),
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
        folder = QFileDialog.getExistingDirectory(self, "Export every plot into")
        if folder:
            files = self.export_plots(folder)
            self.context.status(f"{len(files)} files written to {folder}")

    def export_checkpoint(self, dest: str) -> list[str]:
        """Copy the run's checkpoint (best.pt when there is one) and config.toml beside it."""
        src = Path(self.history.run_dir)
        ckpt = checkpoint_for_prediction(src) or src / CHECKPOINT_FILE
        dest_p = Path(dest)
        shutil.copyfile(ckpt, dest_p)
        config = dest_p.with_name(dest_p.stem + ".toml")
        shutil.copyfile(src / CONFIG_FILE, config)
        return [str(dest_p), str(config)]

    def _on_export_checkpoint_clicked(self) -> None:
        name = f"{Path(self.history.run_dir).name}.pt"
        path, _ = QFileDialog.getSaveFileName(self, "Export checkpoint", name, "Checkpoint (*.pt)")
        if path:
            try:
                files = self.export_checkpoint(path)
            except OSError as exc:
                QMessageBox.warning(self, "Export checkpoint", f"{path}: {exc.strerror}")
                return
            self.context.status(f"wrote {', '.join(files)}")

    def export_report(self, path: str) -> str:
        from app.report import write_report

        return write_report(path, self.history, self.plots())

    def _on_report_clicked(self) -> None:
        name = f"{Path(self.history.run_dir).name}.html"
        path, _ = QFileDialog.getSaveFileName(self, "Export report", name, "HTML (*.html)")
        if path:
            try:
                self.context.status(f"report written to {self.export_report(path)}")
            except (OSError, SnnError) as exc:
                self._show_error(f"{path}: {exc}")

    # ----- model export (engine.export.job)
    def export_checkpoint_path(self) -> str:
        """The checkpoint exports use: the run's best.pt, else its latest checkpoint."""
        run = Path(self.history.run_dir) if self.history.run_dir else None
        if run is None:
            return ""
        ckpt = checkpoint_for_prediction(run)
        return "" if ckpt is None else str(ckpt)

    def _sync_model_menu(self) -> None:
        """Enable the formats the open run's model can be written in (reason as tooltip)."""
        from engine.export.job import FORMATS, available_formats

        ckpt = "" if self.is_running() else self.export_checkpoint_path()
        reasons: dict[str, str | None] = dict.fromkeys(FORMATS, "no finished run is open")
        if ckpt:
            try:
                reasons = available_formats(ckpt)
            except SnnError as exc:
                reasons = dict.fromkeys(FORMATS, str(exc))
        for fmt, action in self.model_actions.items():
            action.setEnabled(reasons.get(fmt) is None)
            action.setToolTip(reasons.get(fmt) or f"write the model as {fmt}, then check it")

    def export_model(self, fmt: str, out: str):
        """Run ``engine.export.job.export_job`` on a worker; the result goes to the log."""
        from engine.export.job import export_job

        ckpt = self.export_checkpoint_path()
        if not ckpt or self.jobs.busy("export"):
            return None
        self.history.log.append(f"exporting {ckpt} as {fmt} to {out}...")
        self._redraw()
        return self.jobs.start(
            "export",
            lambda stop: export_job(ckpt, fmt, out, stop=stop),
            on_finished=self._on_export_finished,
            on_failed=self._on_export_failed,
            background=True,
        )

    def _on_export_finished(self, result) -> None:
        if result is None:
            self.history.log.append("export stopped")
        else:
            self.history.log += result.summary().splitlines()
            state = "checked" if result.ok else "written, but a check FAILED"
            self.context.status(f"{result.path}: {state}")
        self._redraw()

    def _on_export_failed(self, message: str) -> None:
        self.history.log.append(f"export failed: {message}")
        self._show_error(message)
        self._redraw()

    def _on_model_action(self, fmt: str) -> None:
        from engine.export.job import default_export_path

        ckpt = self.export_checkpoint_path()
        suggested = str(default_export_path(ckpt, fmt)) if ckpt else ""
        path, _ = QFileDialog.getSaveFileName(self, f"Export model as {fmt}", suggested)
        if path:
            self.tabs.setCurrentWidget(self.log_view)
            self.export_model(fmt, path)
