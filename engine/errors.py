"""The few exceptions a user sees. Messages name the file or field and say what to do."""

from __future__ import annotations


class SnnError(Exception):
    """Base class: an error with a one-line message meant for a person, not a traceback."""


class DataError(SnnError):
    """A data set, audio file, CSV or IDX file that cannot be used."""


class ConfigError(SnnError):
    """A bad configuration value or config file."""


class CheckpointError(SnnError):
    """A file that is not a valid snn-explorer checkpoint, or one of another version."""


class DownloadError(SnnError):
    """A download that failed for a reason worth showing."""


class DeviceError(SnnError):
    """An audio or compute device that is missing or failed."""


class ExportError(SnnError):
    """A model that a format cannot express (the message names the layer), or a failed export."""
