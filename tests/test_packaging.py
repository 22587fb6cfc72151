"""Packaging truth: every third-party package the code imports is declared in pyproject.toml
(core or an extra), and every declared package is imported somewhere (or is listed as a tool)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from engine.train.config import tomllib

ROOT = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DIST_OF = {
    "PIL": "pillow",
    "PySide6": "pyside6-essentials",
    "sklearn": "scikit-learn",
    "yt_dlp": "yt-dlp",
    "tomli_w": "tomli-w",
}
# declared but never imported by name: tools, and packages reached through another package
NOT_IMPORTED = {
    "pytest", "pytest-qt", "pytest-timeout", "ruff", "import-linter", "hypothesis",
    "tensorboard",  # through torch.utils.tensorboard (engine.train.run_exports)
    "nirtorch",  # through snnTorch's NIR import (engine.export.nir_run)
}  # fmt: skip


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = {_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    return core, extras


def _imported() -> dict[str, str]:
    """Top-level third-party modules imported anywhere in app/ and engine/ -> one file."""
    local = {"app", "engine"}
    found = {}
    for path in [*ROOT.joinpath("app").rglob("*.py"), *ROOT.joinpath("engine").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local and top != "tomli":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared():
    core, extras = _declared()
    missing = {
        f"{DIST_OF.get(m, m).lower()} ({where})"
        for m, where in _imported().items()
        if DIST_OF.get(m, m).lower() not in core | extras
    }
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


def test_every_declared_package_is_used():
    core, extras = _declared()
    used = {DIST_OF.get(m, m).lower() for m in _imported()} | NOT_IMPORTED
    unused = (core | extras) - used - {"tomli"}  # tomli: tomllib's stand-in on Python 3.10
    assert not unused, f"declared in pyproject.toml but never imported: {sorted(unused)}"


def test_tomli_stands_in_for_tomllib_before_python_3_11():
    core, _ = _declared()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10"
    assert "tomli>=2.0; python_version<'3.11'" in project["dependencies"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
