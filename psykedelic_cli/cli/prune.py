"""``psyk prune``: placeholder module, filled in by the pruning-engine work."""
