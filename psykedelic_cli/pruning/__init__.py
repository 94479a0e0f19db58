"""The NumPy pruning engine: kernel statistics, the 27 pruning modes, the kernel analysis.

Importing it never imports TensorFlow; ``prune_model`` and ``strip_masks`` (Keras
model surgery) are loaded from ``psykedelic_cli.models.surgery`` on first use.
"""

from __future__ import annotations

from psykedelic_cli.pruning.analysis import kernel_analysis
from psykedelic_cli.pruning.modes import MODES, Mode, prune_mask, resolve_modes, validate_pruning_parameters
from psykedelic_cli.pruning.statistics import KernelStatistics, kernel_statistics

_FROM_SURGERY = ("prune_model", "strip_masks")

__all__ = [
    "MODES",
    "KernelStatistics",
    "Mode",
    "kernel_analysis",
    "kernel_statistics",
    "prune_mask",
    "resolve_modes",
    "validate_pruning_parameters",
    *_FROM_SURGERY,
]


def __getattr__(name: str):
    if name in _FROM_SURGERY:
        from psykedelic_cli.models import surgery

        return getattr(surgery, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
