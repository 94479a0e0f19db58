"""psykedelic_cli.pruning: its re-exports, and that importing it never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import psykedelic_cli.models
import psykedelic_cli.pruning as pruning
from psykedelic_cli.pruning import analysis, modes, statistics


def test_importing_the_engine_imports_neither_tensorflow_nor_keras():
    probe = (
        "import sys, psykedelic_cli.pruning; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_re_exports():
    assert pruning.kernel_statistics is statistics.kernel_statistics
    assert pruning.KernelStatistics is statistics.KernelStatistics
    assert pruning.MODES is modes.MODES and pruning.Mode is modes.Mode
    assert pruning.resolve_modes is modes.resolve_modes and pruning.prune_mask is modes.prune_mask
    assert pruning.validate_pruning_parameters is modes.validate_pruning_parameters
    assert pruning.kernel_analysis is analysis.kernel_analysis
    assert {"prune_model", "strip_masks"} <= set(pruning.__all__)


def test_model_surgery_is_loaded_on_first_use(monkeypatch):
    # A stand-in for psykedelic_cli.models.surgery, so this test needs no TensorFlow.
    surgery = types.ModuleType("psykedelic_cli.models.surgery")
    surgery.prune_model = lambda model, mode: ("pruned", mode)
    surgery.strip_masks = lambda model: "stripped"
    monkeypatch.setitem(sys.modules, "psykedelic_cli.models.surgery", surgery)
    monkeypatch.setattr(psykedelic_cli.models, "surgery", surgery, raising=False)
    assert pruning.prune_model(None, "det") == ("pruned", "det")
    assert pruning.strip_masks(None) == "stripped"
    with pytest.raises(AttributeError, match="has no attribute 'compute_masks'"):
        pruning.compute_masks
