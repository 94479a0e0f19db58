"""The kernel analysis on the hand-made layers of conftest.py, with hand-counted answers.

Alive kernels: K1..K4 (2×2, K5 is dead), K6 (3×3), ODD1, ODD2 (1×3, non-square).
At t = 0.1 each criterion's own rule (det ≥ tⁿ, det_corr ≥ t²ⁿ, others ≥ t) prunes:

        det det_corr min_eig min_eig_real spectral_radius spectral_radius_real spectral_norm weight
  K1                    x         x                                                          x
  K2                              x                              x
  K3     x      x       x         x              x               x
  K4                                                                                         x
  K6                              x
  ODD1   (non-square: only spectral_norm and weight apply, neither prunes it)
  ODD2                                                                        x              x
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from psykedelic_cli.errors import PsykError
from psykedelic_cli.pruning.analysis import eig_stats, kernel_analysis, pruning_per_threshold, set_analysis
from psykedelic_cli.pruning.modes import prune_mask
from psykedelic_cli.store.schema import BASE_CRITERIA, EIG_CRITERIA, PER_THRESHOLD_THRESHOLDS


def test_eig_stats(analysis_layers):
    result = eig_stats(analysis_layers, 0.1)
    # square alive kernels: K1..K4 (2 eigenvalues each) and K6 (3); K2 and K6 have a pair
    assert result["total_kernels"] == 5
    assert result["total_eigenvalues"] == 11
    assert result["complex_eigenvalues"] == 4
    assert result["complex_ratio"] == pytest.approx(4 / 11)
    # deciding eigenvalue complex: K2 for all four; K6 for min_eig_real and spectral_radius
    expected = {
        "min_eig": (2, 1, 0),  # pruned K1, K3
        "min_eig_real": (4, 2, 2),  # pruned K1, K2, K3, K6; K2 and K6 complex
        "spectral_radius": (1, 2, 0),  # pruned K3
        "spectral_radius_real": (2, 1, 1),  # pruned K2, K3; K2 complex
    }
    assert list(result["criteria"]) == list(EIG_CRITERIA)
    for criterion, (pruned, target_complex, pruned_complex) in expected.items():
        counts = result["criteria"][criterion]
        assert (counts["pruned"], counts["target_complex"], counts["pruned_complex"]) == (
            pruned, target_complex, pruned_complex,
        ), criterion  # fmt: skip
        assert counts["target_complex_ratio"] == pytest.approx(target_complex / 5)
        assert counts["pruned_complex_ratio"] == pytest.approx(pruned_complex / pruned)


def test_eig_stats_ratios_are_null_when_nothing_is_pruned(analysis_layers):
    result = eig_stats(analysis_layers, 1e-6)
    assert all(counts["pruned"] == 0 for counts in result["criteria"].values())
    assert all(counts["pruned_complex_ratio"] is None for counts in result["criteria"].values())
    empty = eig_stats([analysis_layers[2]], 0.1)  # only the non-square layer
    assert empty["total_kernels"] == 0 and empty["complex_ratio"] is None


def test_set_analysis_over_all_base_criteria(analysis_layers):
    result = set_analysis(analysis_layers, 0.1)
    assert result["criteria"] == list(BASE_CRITERIA)
    # the eigenvalue criteria do not apply to the 1×3 layer, so it is left out
    assert result["total_kernels"] == 5
    assert result["shares"] == pytest.approx(
        {
            "min_eig+min_eig_real+weight": 0.2,  # K1
            "min_eig_real+spectral_radius_real": 0.2,  # K2
            "det+det_corr+min_eig+min_eig_real+spectral_radius+spectral_radius_real": 0.2,  # K3
            "weight": 0.2,  # K4
            "min_eig_real": 0.2,  # K6
        }
    )


def test_set_analysis_of_shape_free_criteria_counts_every_layer(analysis_layers):
    result = set_analysis(analysis_layers, 0.1, criteria=["weight", "spectral_norm"])
    assert result["criteria"] == ["weight", "spectral_norm"] and result["total_kernels"] == 7
    assert result["shares"] == pytest.approx({"": 4 / 7, "weight": 2 / 7, "weight+spectral_norm": 1 / 7})
    assert sum(result["shares"].values()) == pytest.approx(1.0)


def test_pruning_per_threshold_uses_each_criterions_own_rule(analysis_layers):
    result = pruning_per_threshold(analysis_layers, thresholds=[0.01, 0.1, 1.0])
    assert result["rule"] == "own" and result["thresholds"] == [0.01, 0.1, 1.0]
    assert list(result["pruned_ratio"]) == list(BASE_CRITERIA)
    ratios = result["pruned_ratio"]
    # det over the 5 square kernels: |det| ≥ t² for 2×2, ≥ t³ for K6. At t = 0.1 only K3
    # (4e-4 < 0.01) dies; the raw rule |det| < t would have pruned all five.
    assert ratios["det"] == pytest.approx([0.0, 0.2, 1.0])
    assert ratios["det_corr"] == pytest.approx([0.0, 0.2, 1.0])
    assert ratios["min_eig_real"] == pytest.approx([0.0, 0.8, 1.0])
    # weight over all 7 alive kernels: K1 .0875, K4 .0675, ODD2 .015 are below 0.1
    assert ratios["weight"] == pytest.approx([0.0, 3 / 7, 1.0])
    # spectral_norm: ODD2 (.027) below 0.1; at t = 1 all seven
    assert ratios["spectral_norm"] == pytest.approx([0.0, 1 / 7, 1.0])


def test_pruning_per_threshold_default_thresholds_and_monotonicity():
    rng = np.random.default_rng(0)
    layers = [("a", rng.standard_normal((3, 3, 8, 16)) * 0.1, rng.random((8, 16)) > 0.2)]
    result = pruning_per_threshold(layers)
    assert result["thresholds"] == list(PER_THRESHOLD_THRESHOLDS)
    alive = int(layers[0][2].sum())
    for criterion, ratios in result["pruned_ratio"].items():
        assert len(ratios) == 25 and np.all(np.diff(ratios) >= 0), criterion
        assert ratios[0] == 0.0 and ratios[-1] == 1.0  # weights ~0.1: every statistic is below 1
        assert all(round(ratio * alive) == pytest.approx(ratio * alive) for ratio in ratios)


def test_kernel_analysis_is_the_three_analyses_and_json_ready(analysis_layers):
    result = kernel_analysis(analysis_layers, 0.1)
    assert result == {
        "eig_stats": eig_stats(analysis_layers, 0.1),
        "set_analysis": set_analysis(analysis_layers, 0.1),
        "pruning_per_threshold": pruning_per_threshold(analysis_layers),
    }
    assert json.loads(json.dumps(result)) == result  # plain Python numbers only


def test_dead_kernels_do_not_count(analysis_layers):
    name, kernel, mask = analysis_layers[0]
    everything_dead = [(name, kernel, np.zeros_like(mask))]
    result = kernel_analysis(everything_dead, 0.1)
    assert result["eig_stats"]["total_kernels"] == 0
    assert result["set_analysis"] == {"criteria": list(BASE_CRITERIA), "total_kernels": 0, "shares": {}}
    assert result["pruning_per_threshold"]["pruned_ratio"] == {}


def test_analysis_errors(analysis_layers):
    with pytest.raises(PsykError, match="threshold must be a finite number > 0"):
        kernel_analysis(analysis_layers, 0.0)
    with pytest.raises(PsykError, match="unknown statistic 'trace'"):
        set_analysis(analysis_layers, 0.1, criteria=["det", "trace"])
    name, kernel, mask = analysis_layers[0]
    broken = kernel.copy()
    broken[0, 0, 1, 0] = np.inf
    with pytest.raises(PsykError, match="layer 'conv_2x2' has NaN or infinite weights"):
        kernel_analysis([(name, broken, mask)], 0.1)


def test_pruning_per_threshold_matches_the_threshold_modes_in_any_threshold_order():
    rng = np.random.default_rng(4)
    layers = [
        ("a", rng.standard_normal((3, 3, 6, 10)) * 0.1, rng.random((6, 10)) > 0.3),
        ("shortcut", rng.standard_normal((1, 1, 6, 10)) * 0.1, np.ones((6, 10))),
    ]
    thresholds = [0.05, 1e-3, 0.2, 1e-2]
    result = pruning_per_threshold(layers, thresholds)
    alive = sum(int(mask.sum()) for _, _, mask in layers)
    for criterion in BASE_CRITERIA:
        for threshold, ratio in zip(thresholds, result["pruned_ratio"][criterion]):
            survivors = sum(
                prune_mask(criterion, kernel, mask, threshold=threshold).sum() for _, kernel, mask in layers
            )
            assert ratio == pytest.approx((alive - survivors) / alive), (criterion, threshold)
