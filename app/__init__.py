"""snn-explorer's window: panels, workers, export helpers and the command line.

Importing this package loads no Qt; only the GUI entry points do.
"""

from engine import __version__

__all__ = ["__version__"]
