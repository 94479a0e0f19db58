"""The 27 pruning modes on hand-made kernels whose answers are known (see conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from psykedelic_cli.errors import PsykError
from psykedelic_cli.pruning.modes import (
    MODES,
    Mode,
    layer_kernels,
    prune_mask,
    resolve_modes,
    survival_bound,
    validate_pruning_parameters,
)
from psykedelic_cli.pruning.statistics import kernel_statistics

SPEC_ORDER = [
    "det", "det_corr", "min_eig", "min_eig_real", "spectral_radius", "spectral_radius_real", "spectral_norm",
    "weight",
    "det_contrib", "min_eig_contrib", "min_eig_real_contrib", "spectral_radius_contrib",
    "spectral_radius_real_contrib", "spectral_norm_contrib", "weight_contrib",
    "det_sorted_kernels", "min_eig_sorted_kernels", "spectral_radius_sorted_kernels",
    "spectral_norm_sorted_kernels", "weight_sorted_kernels", "random_kernels",
    "det_sorted_neurons", "min_eig_sorted_neurons", "spectral_radius_sorted_neurons",
    "spectral_norm_sorted_neurons", "weight_sorted_neurons", "random_neurons",
]  # fmt: skip


def test_the_registry_holds_the_27_modes_in_spec_order():
    assert list(MODES) == SPEC_ORDER
    assert all(isinstance(mode, Mode) and mode.name == name for name, mode in MODES.items())
    descriptions = [mode.description for mode in MODES.values()]
    assert len(set(descriptions)) == 27 and all(descriptions)
    assert [m.scope for m in MODES.values()].count("kernel") == 8
    assert [m.scope for m in MODES.values()].count("contribution") == 7
    assert MODES["random_kernels"].statistic is None and MODES["random_neurons"].statistic is None
    assert MODES["det_contrib"].statistic == "det" and MODES["weight_sorted_neurons"].scope == "sorted_neurons"
    square = {name for name, mode in MODES.items() if mode.requires_square}
    assert not square & {"spectral_norm", "weight", "weight_contrib", "random_kernels", "random_neurons"}
    assert {"det", "det_corr", "min_eig_real", "spectral_radius_sorted_neurons"} <= square
    with pytest.raises(TypeError):
        MODES["det"] = MODES["weight"]  # type: ignore[index]


def test_resolve_modes_expands_all_and_keeps_order():
    assert resolve_modes(["all"]) == SPEC_ORDER
    assert resolve_modes(["weight", "det", "weight"]) == ["weight", "det"]
    assert resolve_modes(["weight", "all"]) == ["weight"] + [m for m in SPEC_ORDER if m != "weight"]
    assert resolve_modes([]) == []
    with pytest.raises(PsykError, match=r"unknown pruning mode 'eigen'; choose from: det, det_corr, .* or 'all'"):
        resolve_modes(["det", "eigen"])


@pytest.mark.parametrize(
    ("threshold", "contribution_threshold", "rate", "message"),
    [
        (0.0, 1e-3, 0.2, "threshold must be a finite number > 0, got 0.0"),
        (-1e-4, 1e-3, 0.2, "threshold must be a finite number > 0, got -0.0001"),
        (float("nan"), 1e-3, 0.2, "threshold must be a finite number > 0, got nan"),
        (float("inf"), 1e-3, 0.2, "threshold must be a finite number > 0, got inf"),
        ("abc", 1e-3, 0.2, "threshold must be a number, got 'abc'"),
        (1e-4, 0.0, 0.2, "contribution threshold must be a finite number > 0, got 0.0"),
        (1e-4, 1e-3, -0.1, "rate must be between 0 and 1 .*, got -0.1"),
        (1e-4, 1e-3, 1.5, "rate must be between 0 and 1 .*, got 1.5"),
        (1e-4, 1e-3, float("nan"), "rate must be between 0 and 1"),
    ],
)
def test_bad_parameters_are_refused(threshold, contribution_threshold, rate, message):
    with pytest.raises(PsykError, match=message):
        validate_pruning_parameters(threshold, contribution_threshold, rate)
    with pytest.raises(PsykError, match=message):
        prune_mask(
            "weight", np.ones((3, 3, 2, 2)), np.ones((2, 2)),
            threshold=threshold, contribution_threshold=contribution_threshold, rate=rate,
        )  # fmt: skip


def test_good_parameters_pass_including_the_rate_bounds():
    for rate in (0.0, 0.5, 1.0):
        validate_pruning_parameters(1e-4, 1e-3, rate)


def test_survival_bounds():
    assert survival_bound("det", 0.1, 3) == pytest.approx(1e-3)
    assert survival_bound("det_corr", 0.1, 3) == pytest.approx(1e-6)
    assert survival_bound("det", 0.1, 1) == pytest.approx(0.1)
    assert survival_bound("min_eig", 0.1, 3) == 0.1 and survival_bound("weight", 0.1, None) == 0.1


# Survivors among the alive K1, K2, K3, K4 (K5 is dead) of the one-neuron layer.
THRESHOLD_T01 = {  # t = 0.1, see the statistics table in conftest.py
    "det": [1, 1, 0, 1],
    "det_corr": [1, 1, 0, 1],
    "min_eig": [0, 1, 0, 1],
    "min_eig_real": [0, 0, 0, 1],
    "spectral_radius": [1, 1, 0, 1],
    "spectral_radius_real": [1, 0, 0, 1],
    "spectral_norm": [1, 1, 1, 1],
    "weight": [0, 1, 1, 0],
}
CONTRIBUTION_C02 = {  # c = 0.2: shares of the sum over the four alive kernels
    "det_contrib": [0, 1, 0, 1],  # .198 .560 .005 .237
    "min_eig_contrib": [0, 1, 0, 1],  # .126 .521 .051 .303
    "min_eig_real_contrib": [1, 1, 0, 1],  # .208 .208 .083 .500
    "spectral_radius_contrib": [1, 1, 0, 1],  # .444 .305 .030 .222
    "spectral_radius_real_contrib": [1, 0, 0, 1],  # .577 .096 .038 .288
    "spectral_norm_contrib": [1, 0, 1, 0],  # .259 .178 .433 .130
    "weight_contrib": [1, 1, 1, 0],  # .211 .301 .325 .163
}
SORTED_KERNELS_R05 = {  # r = 0.5: the two lowest of the four alive kernels die
    "det_sorted_kernels": [0, 1, 0, 1],
    "min_eig_sorted_kernels": [0, 1, 0, 1],
    "spectral_radius_sorted_kernels": [1, 1, 0, 0],
    "spectral_norm_sorted_kernels": [1, 0, 1, 0],
    "weight_sorted_kernels": [0, 1, 1, 0],
}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [*THRESHOLD_T01.items(), *CONTRIBUTION_C02.items(), *SORTED_KERNELS_R05.items()],
)
def test_kernel_modes_on_the_hand_made_neuron(one_neuron, mode, expected):
    kernel, mask = one_neuron
    new_mask = prune_mask(mode, kernel, mask, threshold=0.1, contribution_threshold=0.2, rate=0.5)
    assert new_mask.dtype == np.float32 and new_mask.shape == (5, 1)
    assert new_mask[:, 0].tolist() == [*expected, 0]


def diagonal_neurons(scales: list[list[float | None]]) -> tuple[np.ndarray, np.ndarray]:
    """A layer of 2×2 kernels s·I (``neurons[c_out][c_in]`` = s, None = a dead 5·I)."""
    kernel = np.zeros((2, 2, len(scales[0]), len(scales)))
    mask = np.ones((len(scales[0]), len(scales)))
    for c_out, neuron in enumerate(scales):
        for c_in, scale in enumerate(neuron):
            kernel[:, :, c_in, c_out] = np.eye(2) * (5.0 if scale is None else scale)
            mask[c_in, c_out] = scale is not None
    return kernel, mask


# Neuron scores, summed over alive kernels: by |det| = Σs² → n0 .02, n1 .09, n2 .005, n3 .08;
# by min|λ|, max|λ|, σ_max or mean|w| (= s/2) → n0 .2, n1 .3, n2 .1, n3 .4 (halved for weight).
# n4 has no alive kernel, so it is not one of the 4 alive neurons; r = .75 kills 3 of them.
NEURONS = [[0.1, 0.1], [0.3, None], [0.05, 0.05], [0.2, 0.2], [None, None]]


@pytest.mark.parametrize(
    ("mode", "surviving_neuron"),
    [
        ("det_sorted_neurons", 1),
        ("min_eig_sorted_neurons", 3),
        ("spectral_radius_sorted_neurons", 3),
        ("spectral_norm_sorted_neurons", 3),
        ("weight_sorted_neurons", 3),
    ],
)
def test_sorted_neuron_modes(mode, surviving_neuron):
    kernel, mask = diagonal_neurons(NEURONS)
    new_mask = prune_mask(mode, kernel, mask, rate=0.75)
    expected = np.zeros_like(mask)
    expected[:, surviving_neuron] = mask[:, surviving_neuron]
    np.testing.assert_array_equal(new_mask, expected)


def test_random_neurons_kill_the_fraction_of_alive_neurons_reproducibly():
    kernel, mask = diagonal_neurons(NEURONS)
    masks = [
        prune_mask("random_neurons", kernel, mask, rate=0.75, rng=np.random.default_rng(seed)) for seed in range(20)
    ]
    for new_mask in masks:
        alive_neurons = new_mask.any(axis=0)
        assert alive_neurons.sum() == 1 and not alive_neurons[4]
        survivor = int(np.flatnonzero(alive_neurons)[0])
        np.testing.assert_array_equal(new_mask[:, survivor], mask[:, survivor])  # whole neurons only
    assert len({int(np.flatnonzero(m.any(axis=0))[0]) for m in masks}) > 1  # the seed matters
    again = prune_mask("random_neurons", kernel, mask, rate=0.75, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(again, masks[3])


def test_random_kernels_kill_the_fraction_per_neuron_reproducibly():
    kernel = np.random.default_rng(0).standard_normal((3, 3, 10, 6))
    mask = np.ones((10, 6))
    mask[:4, 0] = 0  # 6 alive in neuron 0: floor(.5·6) = 3 die; 10 alive elsewhere: 5 die
    first = prune_mask("random_kernels", kernel, mask, rate=0.5, rng=np.random.default_rng(42))
    assert first.sum(axis=0).tolist() == [3, 5, 5, 5, 5, 5]
    assert not (first > mask).any()
    same_seed = prune_mask("random_kernels", kernel, mask, rate=0.5, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(first, same_seed)
    other = prune_mask("random_kernels", kernel, mask, rate=0.5, rng=np.random.default_rng(43))
    assert not np.array_equal(first, other)
    # without an rng the default is seeded too
    np.testing.assert_array_equal(
        prune_mask("random_kernels", kernel, mask, rate=0.5), prune_mask("random_kernels", kernel, mask, rate=0.5)
    )


def test_rate_is_the_fraction_that_dies():
    # The original killed 1 − r; here r = 0.25 of 8 alive kernels means 2 die, 6 live.
    kernel = np.random.default_rng(1).standard_normal((3, 3, 8, 3))
    for mode in ("weight_sorted_kernels", "det_sorted_kernels", "random_kernels"):
        new_mask = prune_mask(mode, kernel, np.ones((8, 3)), rate=0.25)
        assert new_mask.sum(axis=0).tolist() == [6, 6, 6], mode
    assert prune_mask("weight_sorted_kernels", kernel, np.ones((8, 3)), rate=0.0).sum() == 24
    assert prune_mask("weight_sorted_kernels", kernel, np.ones((8, 3)), rate=1.0).sum() == 0
    # a decimal rate is taken at its decimal value: 0.29 of 100 is 29, not 28
    assert prune_mask("random_kernels", np.ones((1, 1, 100, 1)), np.ones((100, 1)), rate=0.29).sum() == 71


def test_weight_contribution_divides_by_the_sum_of_mean_weights(one_neuron):
    # The original divided mean|w| by the neuron's sum of |w| (k² = 4 times larger for
    # 2×2 kernels): every share would be below 0.2 and the whole neuron would die.
    kernel, mask = one_neuron
    new_mask = prune_mask("weight_contrib", kernel, mask, contribution_threshold=0.2)
    assert new_mask[:4, 0].tolist() == [1, 1, 1, 0]
    weights = np.abs(layer_kernels(kernel)[:4, 0]).mean(axis=(1, 2))
    shares = weights / weights.sum()
    np.testing.assert_array_equal(new_mask[:4, 0], shares >= 0.2)


def test_a_neuron_whose_alive_kernels_sum_to_zero_loses_them_all():
    kernel = np.zeros((3, 3, 3, 2))
    kernel[:, :, :, 1] = np.eye(3)[:, :, None]
    mask = np.ones((3, 2))
    for mode in ("weight_contrib", "det_contrib", "min_eig_contrib"):
        new_mask = prune_mask(mode, kernel, mask, contribution_threshold=0.1)
        assert new_mask[:, 0].tolist() == [0, 0, 0] and new_mask[:, 1].tolist() == [1, 1, 1]


def test_ties_are_broken_by_index():
    kernel = np.ones((3, 3, 4, 2))
    new_mask = prune_mask("weight_sorted_kernels", kernel, np.ones((4, 2)), rate=0.5)
    assert new_mask[:, 0].tolist() == [0, 0, 1, 1] and new_mask[:, 1].tolist() == [0, 0, 1, 1]
    new_mask = prune_mask("spectral_norm_sorted_neurons", np.ones((3, 3, 2, 4)), np.ones((2, 4)), rate=0.5)
    assert new_mask.any(axis=0).tolist() == [False, False, True, True]


@pytest.mark.parametrize("mode", SPEC_ORDER)
def test_masks_only_go_from_one_to_zero(mode):
    rng = np.random.default_rng(5)
    kernel = rng.standard_normal((3, 3, 6, 5)) * 0.05
    mask = rng.random((6, 5)) > 0.3
    kernel[:, :, ~mask] *= 1e4  # dead kernels with weights that would pass any rule
    kernel[:, :, 0, 0] = np.diag([1e3, 2e3, 3e3])
    mask[0, 0] = False
    new_mask = prune_mask(mode, kernel, mask, threshold=0.05, contribution_threshold=0.1, rate=0.3)
    assert set(np.unique(new_mask)) <= {0.0, 1.0}
    assert not (new_mask.astype(bool) & ~mask).any()
    # pruning again with the new mask never revives anything either
    again = prune_mask(mode, kernel, new_mask, threshold=0.05, contribution_threshold=0.1, rate=0.3)
    assert not (again > new_mask).any()


def test_bool_and_float_masks_and_precomputed_statistics_agree():
    kernel = np.random.default_rng(8).standard_normal((3, 3, 5, 4)) * 0.1
    mask = np.random.default_rng(9).random((5, 4)) > 0.2
    stats = kernel_statistics(layer_kernels(kernel))
    for mode in MODES:
        plain = prune_mask(mode, kernel, mask, threshold=0.05, rate=0.4)
        as_float = prune_mask(mode, kernel, mask.astype(np.float32), threshold=0.05, rate=0.4)
        np.testing.assert_array_equal(plain, as_float)
        np.testing.assert_array_equal(plain, prune_mask(mode, kernel, mask, threshold=0.05, rate=0.4, stats=stats))
    with pytest.raises(ValueError, match="statistics of shape"):
        prune_mask("det", kernel, mask, stats=kernel_statistics(layer_kernels(kernel)[:2]))


def test_eigenvalue_modes_refuse_non_square_kernels():
    kernel = np.random.default_rng(0).standard_normal((1, 3, 4, 2))
    stats = kernel_statistics(layer_kernels(kernel))  # spectral_norm and weight only
    for mode in (name for name, m in MODES.items() if m.requires_square):
        with pytest.raises(PsykError, match="layer 'conv_1x3': .* need square kernels, but the kernels are 1×3"):
            prune_mask(mode, kernel, np.ones((4, 2)), layer="conv_1x3")
        with pytest.raises(PsykError, match="need square kernels"):
            prune_mask(mode, kernel, np.ones((4, 2)), stats=stats)
    for mode in ("spectral_norm", "weight", "spectral_norm_contrib", "weight_sorted_neurons", "random_kernels"):
        assert prune_mask(mode, kernel, np.ones((4, 2)), threshold=0.5).shape == (4, 2)


def test_unknown_mode_and_non_finite_weights():
    with pytest.raises(PsykError, match="unknown pruning mode 'all'; choose from: det, .*random_neurons$"):
        prune_mask("all", np.ones((3, 3, 1, 1)), np.ones((1, 1)))
    kernel = np.ones((3, 3, 2, 2))
    kernel[1, 1, 0, 1] = np.nan
    with pytest.raises(PsykError, match="layer 'stem' has NaN or infinite weights"):
        prune_mask("weight", kernel, np.ones((2, 2)), layer="stem")


def test_prune_mask_accepts_a_mode_object():
    kernel = np.random.default_rng(2).standard_normal((3, 3, 4, 4))
    np.testing.assert_array_equal(
        prune_mask(MODES["det"], kernel, np.ones((4, 4)), threshold=0.5),
        prune_mask("det", kernel, np.ones((4, 4)), threshold=0.5),
    )


@pytest.mark.parametrize("mode", SPEC_ORDER)
@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_every_mode_refuses_non_finite_weights_alike(mode, bad):
    kernel = np.random.default_rng(3).standard_normal((3, 3, 2, 2))
    kernel[0, 2, 1, 0] = bad
    with pytest.raises(PsykError, match=r"^layer 'stem' has NaN or infinite weights$"):
        prune_mask(mode, kernel, np.ones((2, 2)), rate=0.0, layer="stem")


def test_applies_to_says_which_kernel_shapes_a_mode_can_prune():
    assert MODES["min_eig"].applies_to((3, 3)) and not MODES["min_eig"].applies_to((1, 7))
    assert not MODES["det_sorted_neurons"].applies_to((7, 1))
    assert all(MODES[name].applies_to((1, 7)) for name in ("weight", "spectral_norm_contrib", "random_neurons"))
