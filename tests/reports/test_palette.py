import pytest

from psykedelic_cli.reports.palette import CRITERION_COLORS, CRITERION_LETTERS, mode_parts, mode_sort_key, mode_style
from psykedelic_cli.store.schema import BASE_CRITERIA

SPEC_MODES = {  # SPEC.md's 27 modes by family, in SPEC order
    "kernel": ["det", "det_corr", "min_eig", "min_eig_real", "spectral_radius", "spectral_radius_real",
               "spectral_norm", "weight"],
    "contribution": ["det_contrib", "min_eig_contrib", "min_eig_real_contrib", "spectral_radius_contrib",
                     "spectral_radius_real_contrib", "spectral_norm_contrib", "weight_contrib"],
    "sorted_kernels": ["det_sorted_kernels", "min_eig_sorted_kernels", "spectral_radius_sorted_kernels",
                       "spectral_norm_sorted_kernels", "weight_sorted_kernels", "random_kernels"],
    "sorted_neurons": ["det_sorted_neurons", "min_eig_sorted_neurons", "spectral_radius_sorted_neurons",
                       "spectral_norm_sorted_neurons", "weight_sorted_neurons", "random_neurons"],
}
ALL_MODES = [mode for modes in SPEC_MODES.values() for mode in modes]


@pytest.mark.parametrize(("scope", "mode"), [(scope, mode) for scope, modes in SPEC_MODES.items() for mode in modes])
def test_every_mode_is_coloured_by_its_statistic_and_hatched_by_its_scope(scope, mode):
    statistic, parsed_scope = mode_parts(mode)
    assert parsed_scope == scope
    assert mode.startswith(statistic) and statistic in (*BASE_CRITERIA, "random")
    assert mode_style(mode).color == CRITERION_COLORS[statistic]
    assert mode_style(mode).hatch == mode_style(SPEC_MODES[scope][-1]).hatch


def test_scopes_differ_in_hatch_and_dash_criteria_in_colour():
    assert len({mode_style(c).color for c in BASE_CRITERIA}) == len(BASE_CRITERIA)
    family = ["det", "det_contrib", "det_sorted_kernels", "det_sorted_neurons"]
    assert len({mode_style(m).color for m in family}) == 1
    assert len({mode_style(m).hatch for m in family}) == 4 and len({mode_style(m).linestyle for m in family}) == 4
    assert mode_style("None").color != mode_style("random_kernels").color


def test_spec_order_and_fixed_letters():
    assert sorted(reversed(ALL_MODES + ["None"]), key=mode_sort_key) == ["None", *ALL_MODES]
    assert [CRITERION_LETTERS[c] for c in BASE_CRITERIA] == list("abcdefgh")
