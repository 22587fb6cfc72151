"""Persistent settings (window state, last-used parameters) in one INI file.

The file is ``$SNN_EXPLORER_CONFIG_DIR/settings.ini`` when that variable is set (tests point it at
a temporary folder), else Qt's per-user config location.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings, QStandardPaths


def settings_path() -> str:
    base = os.environ.get("SNN_EXPLORER_CONFIG_DIR") or os.path.join(
        QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericConfigLocation),
        "snn-explorer",
    )
    os.makedirs(base, exist_ok=True)
    return os.path.join(base, "settings.ini")


def open_settings() -> QSettings:
    return QSettings(settings_path(), QSettings.Format.IniFormat)


def read_value(settings: QSettings, key: str, default, kind=None):
    """``settings.value`` that returns ``default`` on a missing or unconvertible value."""
    value = settings.value(key, None)
    if value is None:
        return default
    kind = kind or type(default)
    try:
        if kind is bool:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        return kind(value)
    except (TypeError, ValueError):
        return default


# ----- recently opened paths, one list per kind ("data", "run", "checkpoint", "audio")
RECENT_MAX = 8


def recent_paths(settings: QSettings, kind: str) -> list[str]:
    """The recently opened paths of ``kind``, newest first (missing or bad entries: [])."""
    value = settings.value(f"recent/{kind}", [])
    if isinstance(value, str):  # QSettings gives a one-item list back as a plain string
        value = [value] if value else []
    return [str(v) for v in value] if isinstance(value, list) else []


def add_recent(settings: QSettings, kind: str, path: str) -> list[str]:
    """Put ``path`` first in the ``kind`` list (once; at most ``RECENT_MAX``); the new list."""
    paths = [path] + [p for p in recent_paths(settings, kind) if p != path]
    paths = paths[:RECENT_MAX]
    settings.setValue(f"recent/{kind}", paths)
    return paths


def clear_recent(settings: QSettings) -> None:
    settings.remove("recent")
