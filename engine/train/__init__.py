"""Training: run config, the loop and its events, checkpoints, run folders, run history."""
