"""One fixed look per criterion and mode, shared by every chart and table.

A mode is a statistic × a scope (``psykedelic_cli.pruning.modes.MODES``): the
statistic picks the colour (so ``det``, ``det_contrib`` and ``det_sorted_kernels``
read as one family), the scope picks the hatch of a bar and the dash of a line.
Letters code criteria in the set-analysis charts; they are fixed too, so "c" is
min_eig in every figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from psykedelic_cli.pruning.modes import MODES
from psykedelic_cli.store.schema import BASE_CRITERIA, BASELINE

RANDOM = "random"
"""The statistic of the random modes in colours (their ``Mode.statistic`` is None)."""

# Pairs of related criteria share a hue (dark = the |λ| / det version, light = its
# variant) so the eight stay tellable apart in print and for colour-blind readers.
CRITERION_COLORS = {
    "det": "#1f5fa8",
    "det_corr": "#6aaed6",
    "min_eig": "#c0392b",
    "min_eig_real": "#f39c12",
    "spectral_radius": "#1e8449",
    "spectral_radius_real": "#82c26e",
    "spectral_norm": "#7d3c98",
    "weight": "#8c564b",
    RANDOM: "#7f7f7f",
}
BASELINE_COLOR = "#222222"
UNKNOWN_COLOR = "#bdbdbd"

# Keyed by the scopes of psykedelic_cli.pruning.modes.MODES.
_SCOPE_HATCH = {"kernel": "", "contribution": "//", "sorted_kernels": "..", "sorted_neurons": "xx"}
_SCOPE_LINESTYLE = {"kernel": "-", "contribution": "--", "sorted_kernels": ":", "sorted_neurons": "-."}
_SCOPE_MARKER = {"kernel": "o", "contribution": "s", "sorted_kernels": "^", "sorted_neurons": "D"}

CRITERION_LETTERS = {criterion: letter for letter, criterion in zip("abcdefgh", BASE_CRITERIA)}
"""a = det, b = det_corr, c = min_eig, … h = weight (BASE_CRITERIA order), in every chart."""

_MODE_ORDER = {name: position for position, name in enumerate(MODES)}


@dataclass(frozen=True)
class Style:
    color: str
    hatch: str
    linestyle: str
    marker: str


def mode_parts(mode: str) -> tuple[str, str]:
    """``(statistic, scope)`` of a mode from ``MODES``: ``det_sorted_kernels`` → ``("det", "sorted_kernels")``.

    The random modes have the statistic ``"random"``; a name that is no mode (a base
    criterion of a legacy chart, the "None" baseline) reads as its own statistic in the
    kernel scope.
    """
    spec = MODES.get(mode)
    if spec is None:
        return mode, "kernel"
    return spec.statistic or RANDOM, spec.scope


def mode_style(mode: str) -> Style:
    """Colour by statistic, hatch/dash/marker by scope; the "None" baseline is near-black."""
    statistic, scope = mode_parts(mode)
    if mode == BASELINE:
        color = BASELINE_COLOR
    else:
        color = CRITERION_COLORS.get(statistic, UNKNOWN_COLOR)
    return Style(color, _SCOPE_HATCH[scope], _SCOPE_LINESTYLE[scope], _SCOPE_MARKER[scope])


def mode_sort_key(mode: str) -> tuple:
    """SPEC order (the order of ``MODES``) after the baseline; unknown names last, by name."""
    if mode == BASELINE:
        return (0,)
    if mode in _MODE_ORDER:
        return (1, _MODE_ORDER[mode])
    return (2, mode)


def criterion_letter(criterion: str) -> str:
    """The fixed letter of a base criterion; any other criterion is coded by its own name."""
    return CRITERION_LETTERS.get(criterion, criterion)

