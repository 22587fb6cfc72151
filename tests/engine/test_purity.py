"""The engine never imports Qt, pyqtgraph or app."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_import_engine_loads_no_qt():
    modules = sorted(
        ".".join(p.relative_to(ROOT / "engine").with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "engine").rglob("*.py")
        if p.name != "__init__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module('engine.' + m)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'app', 'PyQt5', 'PyQt6')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"engine imported GUI modules: {out.stdout.strip()}"


def test_engine_sources_do_not_name_qt():
    offenders = []
    for path in (ROOT / "engine").rglob("*.py"):
        for line in path.read_text().splitlines():
            s = line.strip()
            if s.startswith(("import ", "from ")) and any(
                s.split()[1].split(".")[0] == m for m in ("PySide6", "pyqtgraph", "app", "PyQt5")
            ):
                offenders.append(f"{path.relative_to(ROOT)}: {s}")
    assert not offenders, offenders


def test_engine_has_no_import_circles():
    """No module of the engine reaches itself through imports, counting imports in functions."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("engine", include_external_packages=False)
    circles = sorted(
        {
            tuple(sorted((m, n)))
            for m in graph.modules
            for n in graph.find_modules_directly_imported_by(m)
            if graph.chain_exists(importer=n, imported=m)
        }
    )
    assert not circles, circles
