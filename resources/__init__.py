"""Data files shipped with snn-explorer (installed as ``engine.resources``)."""
