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
