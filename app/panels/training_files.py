"""Files of the Training tab: config load/save, plot export, checkpoint export, HTML report.

A mixin of :class:`app.panels.training.TrainingPanel` (it uses the panel's ``history``, views,
``setup`` and ``context``); the methods without a dialog are what tests and scripts call.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.plotting import export_plot
from engine.config import load_config, save_config
from engine.errors import SnnError


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
        ckpt = src / "best.pt" if (src / "best.pt").is_file() else src / "checkpoint.pt"
        dest_p = Path(dest)
        shutil.copyfile(ckpt, dest_p)
        config = dest_p.with_name(dest_p.stem + ".toml")
        shutil.copyfile(src / "config.toml", config)
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
