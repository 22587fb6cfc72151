"""Data sets: sources and spec strings, splits, class balance, IDX files, sample images, feature sets."""
