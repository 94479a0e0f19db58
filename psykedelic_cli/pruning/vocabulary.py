"""The engine's names: the base criteria, the eigenvalue criteria and the thresholds of the
per-threshold analysis (SPEC.md). The store and the reports import them from here, so the
engine itself needs nothing but NumPy (no TinyDB, no Keras).
"""

from __future__ import annotations

BASE_CRITERIA = (
    "det",
    "det_corr",
    "min_eig",
    "min_eig_real",
    "spectral_radius",
    "spectral_radius_real",
    "spectral_norm",
    "weight",
)
"""The eight base criteria compared by default (SPEC.md)."""

EIG_CRITERIA = ("min_eig", "min_eig_real", "spectral_radius", "spectral_radius_real")
"""The criteria whose statistic is an eigenvalue (the eig_stats analysis)."""

PER_THRESHOLD_THRESHOLDS = tuple(m * 10.0**e for e in range(-12, 0) for m in (1.0, 5.0)) + (1.0,)
"""1e-12, 5e-12, 1e-11, ..., 1e-1, 5e-1, 1 — the thresholds of ``pruning_per_threshold``."""

BASELINE = "None"
"""The key of the unpruned baseline (no mode) in a comparison's results."""
