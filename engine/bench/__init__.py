"""``snn-explorer bench``: speed and memory against the snnTorch-style reference."""
