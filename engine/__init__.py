"""snn-explorer's science core: neurons, encoders, audio features, data sets, models, training.

This package never imports Qt, pyqtgraph or ``app`` (a test proves it). Arrays leave it as
NumPy inside small frozen dataclasses.
"""

__version__ = "0.1.0"
