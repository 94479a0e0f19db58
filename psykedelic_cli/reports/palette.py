"""One fixed look per criterion and mode, shared by every chart and table.

A mode is a statistic × a scope (SPEC.md): the statistic picks the colour (so
``det``, ``det_contrib`` and ``det_sorted_kernels`` read as one family), the scope
picks the hatch of a bar and the dash of a line. Letters code criteria in the
set-analysis charts; they are fixed too, so "c" is min_eig in every figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from psykedelic_cli.store.schema import BASE_CRITERIA, BASELINE

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
    "random": "#7f7f7f",
}
BASELINE_COLOR = "#222222"
UNKNOWN_COLOR = "#bdbdbd"

# Scope of a mode, recognised by its name's suffix (SPEC.md mode families), in SPEC order.
SCOPES = ("threshold", "contribution", "sorted_kernels", "sorted_neurons")
_SCOPE_SUFFIXES = (("_contrib", "contribution"), ("_sorted_kernels", "sorted_kernels"), ("_sorted_neurons", "sorted_neurons"))
_SCOPE_HATCH = {"threshold": "", "contribution": "//", "sorted_kernels": "..", "sorted_neurons": "xx"}
_SCOPE_LINESTYLE = {"threshold": "-", "contribution": "--", "sorted_kernels": ":", "sorted_neurons": "-."}
_SCOPE_MARKER = {"threshold": "o", "contribution": "s", "sorted_kernels": "^", "sorted_neurons": "D"}

CRITERION_LETTERS = {criterion: letter for letter, criterion in zip("abcdefgh", BASE_CRITERIA)}
"""a = det, b = det_corr, c = min_eig, … h = weight (BASE_CRITERIA order), in every chart."""

_STATISTIC_ORDER = (*BASE_CRITERIA, "random")


@dataclass(frozen=True)
class Style:
    color: str
    hatch: str
    linestyle: str
    marker: str


def mode_parts(mode: str) -> tuple[str, str]:
    """``(statistic, scope)`` of a mode name: ``det_sorted_kernels`` → ``("det", "sorted_kernels")``.

    ``random_kernels`` / ``random_neurons`` are the random statistic in the sorted scopes.
    """
    if mode in ("random_kernels", "random_neurons"):
        return "random", "sorted_" + mode.removeprefix("random_")
    for suffix, scope in _SCOPE_SUFFIXES:
        if mode.endswith(suffix):
            return mode.removesuffix(suffix), scope
    return mode, "threshold"


def mode_style(mode: str) -> Style:
    """Colour by statistic, hatch/dash/marker by scope; the "None" baseline is near-black."""
    statistic, scope = mode_parts(mode)
    if mode == BASELINE:
        color = BASELINE_COLOR
    else:
        color = CRITERION_COLORS.get(statistic, UNKNOWN_COLOR)
    return Style(color, _SCOPE_HATCH[scope], _SCOPE_LINESTYLE[scope], _SCOPE_MARKER[scope])


def mode_sort_key(mode: str) -> tuple:
    """SPEC order: the baseline, then scope by scope, statistics in BASE_CRITERIA order; unknown names last."""
    if mode == BASELINE:
        return (0,)
    statistic, scope = mode_parts(mode)
    if statistic in _STATISTIC_ORDER:
        return (1, SCOPES.index(scope), _STATISTIC_ORDER.index(statistic))
    return (2, mode)


def criterion_letter(criterion: str) -> str:
    """The fixed letter of a base criterion; any other criterion is coded by its own name."""
    return CRITERION_LETTERS.get(criterion, criterion)

