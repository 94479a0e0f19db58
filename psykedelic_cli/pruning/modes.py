"""The 27 pruning modes of SPEC.md: each is a statistic × a scope, written as one row.

A mode turns a layer's kernel mask (C_in, C_out) into a new mask. The scope says
what a kernel is compared with:

- ``kernel``: the kernel alone (statistic ≥ t; det against tⁿ, det_corr against t²ⁿ);
- ``contribution``: its share of the neuron's summed statistic (share ≥ c);
- ``sorted_kernels``: the other kernels of its neuron (the fraction r lowest die);
- ``sorted_neurons``: whole neurons of the layer, scored by their summed statistic
  (the fraction r lowest lose every kernel).

Scores are |statistic| (only det can be negative). Masks only go 1 → 0: a dead
kernel stays dead whatever its weights, and only alive kernels count in sums, ranks
and fractions. Equal scores are broken by index (the lower index dies first) so
runs are reproducible.

Two deliberate differences from the original code: ``weight_contrib`` divides mean
|w| by the neuron's sum of mean |w| (the original divided by the sum of |w|, a
denominator k² times too large), and r is the fraction of kernels or neurons that
*dies* (the original kept the fraction r and killed 1 − r).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from psykedelic_cli.errors import PsykError
from psykedelic_cli.pruning.statistics import (
    SQUARE_ONLY,
    KernelStatistics,
    kernel_statistics,
    require_applicable,
    require_finite,
)

DEFAULT_THRESHOLD = 1e-4
"""t: the significance threshold of SPEC.md."""
DEFAULT_CONTRIBUTION_THRESHOLD = 1e-3
"""c: the contribution threshold."""
DEFAULT_RATE = 0.2
"""r: the fraction of alive kernels (or neurons) the sorted modes kill."""

# How each statistic reads in a mode description.
_STATISTIC_TERMS = {
    "det": "|det K|",
    "det_corr": "|det KᵀK|",
    "min_eig": "min |λ|",
    "min_eig_real": "min |Re λ|",
    "spectral_radius": "max |λ|",
    "spectral_radius_real": "max |Re λ|",
    "spectral_norm": "σ_max(K)",
    "weight": "mean |w|",
}

_SCOPE_DESCRIPTIONS = {
    "kernel": "a kernel dies when {term} < {bound}",
    "contribution": "a kernel dies when its share of the neuron's summed {term} is < c",
    "sorted_kernels": "in each neuron, the fraction r of alive kernels {chosen} die",
    "sorted_neurons": "in each layer, the fraction r of alive neurons {chosen} lose all their kernels",
}
_CHOSEN = {"sorted_kernels": "with the lowest {term}", "sorted_neurons": "with the lowest summed {term}"}
_CHOSEN_AT_RANDOM = "chosen at random (seeded)"

# det and det_corr are products of n and 2n eigenvalue-sized factors, so their
# threshold is raised to that power of t: |det K| ≥ tⁿ, |det KᵀK| ≥ t²ⁿ.
_THRESHOLD_POWER_PER_SIZE = {"det": 1, "det_corr": 2}
_BOUND_TERMS = {1: "tⁿ", 2: "t²ⁿ"}


@dataclass(frozen=True)
class Mode:
    """One pruning mode: ``statistic`` (None for the random modes) compared within ``scope``."""

    name: str
    statistic: str | None
    scope: str
    description: str

    @property
    def requires_square(self) -> bool:
        """Whether the mode needs eigenvalues or a determinant (square kernels)."""
        return self.statistic in SQUARE_ONLY

    def applies_to(self, kernel_shape: tuple[int, int]) -> bool:
        """Whether the mode can prune (kh, kw) kernels: any shape, unless it needs square ones."""
        kh, kw = kernel_shape
        return kh == kw or not self.requires_square


def _mode(name: str, statistic: str | None, scope: str, note: str = "") -> Mode:
    term = _STATISTIC_TERMS.get(statistic)
    chosen = _CHOSEN_AT_RANDOM if statistic is None else _CHOSEN.get(scope, "").format(term=term)
    bound = _BOUND_TERMS.get(_THRESHOLD_POWER_PER_SIZE.get(statistic), "t")
    description = _SCOPE_DESCRIPTIONS[scope].format(term=term, bound=bound, chosen=chosen)
    return Mode(name, statistic, scope, description + note)


MODES: Mapping[str, Mode] = MappingProxyType(
    {
        mode.name: mode
        for mode in (
            _mode("det", "det", "kernel"),
            _mode("det_corr", "det_corr", "kernel"),
            _mode("min_eig", "min_eig", "kernel"),
            _mode("min_eig_real", "min_eig_real", "kernel"),
            _mode("spectral_radius", "spectral_radius", "kernel"),
            _mode("spectral_radius_real", "spectral_radius_real", "kernel"),
            _mode("spectral_norm", "spectral_norm", "kernel"),
            _mode("weight", "weight", "kernel"),
            _mode("det_contrib", "det", "contribution"),
            _mode("min_eig_contrib", "min_eig", "contribution"),
            _mode("min_eig_real_contrib", "min_eig_real", "contribution"),
            _mode("spectral_radius_contrib", "spectral_radius", "contribution"),
            _mode("spectral_radius_real_contrib", "spectral_radius_real", "contribution"),
            _mode("spectral_norm_contrib", "spectral_norm", "contribution"),
            _mode("weight_contrib", "weight", "contribution"),
            _mode("det_sorted_kernels", "det", "sorted_kernels"),
            _mode("min_eig_sorted_kernels", "min_eig", "sorted_kernels"),
            _mode("spectral_radius_sorted_kernels", "spectral_radius", "sorted_kernels"),
            _mode("spectral_norm_sorted_kernels", "spectral_norm", "sorted_kernels"),
            _mode("weight_sorted_kernels", "weight", "sorted_kernels"),
            _mode("random_kernels", None, "sorted_kernels"),
            _mode("det_sorted_neurons", "det", "sorted_neurons"),
            _mode("min_eig_sorted_neurons", "min_eig", "sorted_neurons"),
            _mode("spectral_radius_sorted_neurons", "spectral_radius", "sorted_neurons"),
            _mode("spectral_norm_sorted_neurons", "spectral_norm", "sorted_neurons"),
            _mode("weight_sorted_neurons", "weight", "sorted_neurons", " (filter L1 norm, Li et al. 2017)"),
            _mode("random_neurons", None, "sorted_neurons"),
        )
    }
)
"""Every pruning mode by name, in SPEC order."""


def resolve_modes(names: Iterable[str]) -> list[str]:
    """Mode names with "all" expanded to the 27 and duplicates dropped, order kept."""
    resolved: dict[str, None] = {}
    for name in names:
        if name == "all":
            resolved.update(dict.fromkeys(MODES))
        else:
            resolved[get_mode(name, all_allowed=True).name] = None
    return list(resolved)


def get_mode(name: str, *, all_allowed: bool = False) -> Mode:
    """The mode called ``name``; PsykError listing the modes when there is none."""
    if name not in MODES:
        alternatives = ", ".join(MODES) + (" or 'all'" if all_allowed else "")
        raise PsykError(f"unknown pruning mode {name!r}; choose from: {alternatives}")
    return MODES[name]


def validate_threshold(threshold: float, what: str = "threshold") -> float:
    """``threshold`` as a float; PsykError unless it is a finite number > 0."""
    value = _number(threshold, what)
    if not (math.isfinite(value) and value > 0):
        raise PsykError(f"{what} must be a finite number > 0, got {threshold!r}")
    return value


def validate_pruning_parameters(threshold: float, contribution_threshold: float, rate: float) -> None:
    """PsykError unless t > 0, c > 0 (both finite) and 0 ≤ r ≤ 1."""
    validate_threshold(threshold, "threshold")
    validate_threshold(contribution_threshold, "contribution threshold")
    value = _number(rate, "rate")
    if not 0.0 <= value <= 1.0:
        raise PsykError(f"rate must be between 0 and 1 (the fraction of kernels or neurons that dies), got {rate!r}")


def _number(value: object, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PsykError(f"{what} must be a number, got {value!r}") from None


def survival_bound(statistic: str, threshold: float, kernel_size: int | None) -> float:
    """The value |statistic| must reach to survive a threshold mode: tⁿ for det, t²ⁿ for det_corr, else t."""
    if statistic in _THRESHOLD_POWER_PER_SIZE:
        return threshold ** (_THRESHOLD_POWER_PER_SIZE[statistic] * kernel_size)
    return threshold


def layer_kernels(kernel: np.ndarray) -> np.ndarray:
    """A Keras Conv2D kernel (kh, kw, C_in, C_out) seen as (C_in, C_out, kh, kw) kernels (a view)."""
    kernel = np.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"a Conv2D kernel has shape (kh, kw, C_in, C_out), got {kernel.shape}")
    return kernel.transpose(2, 3, 0, 1)


@dataclass(frozen=True)
class _Rule:
    """What a scope needs besides the scores: the parameters, the kernel size, the RNG."""

    statistic: str | None
    threshold: float
    contribution_threshold: float
    rate: float
    kernel_size: int
    rng: np.random.Generator


def _kernel_survivors(scores: np.ndarray, alive: np.ndarray, rule: _Rule) -> np.ndarray:
    return scores >= survival_bound(rule.statistic, rule.threshold, rule.kernel_size)


def _contribution_survivors(scores: np.ndarray, alive: np.ndarray, rule: _Rule) -> np.ndarray:
    neuron_sums = np.where(alive, scores, 0.0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = scores / neuron_sums
    # A neuron whose alive kernels sum to 0 has no share to give: all its kernels die.
    return (neuron_sums > 0) & (shares >= rule.contribution_threshold)


def _sorted_kernel_survivors(scores: np.ndarray | None, alive: np.ndarray, rule: _Rule) -> np.ndarray:
    if scores is None:
        scores = rule.rng.random(alive.shape)
    return ~_lowest_fraction(scores, alive, rule.rate)


def _sorted_neuron_survivors(scores: np.ndarray | None, alive: np.ndarray, rule: _Rule) -> np.ndarray:
    if scores is None:
        neuron_scores = rule.rng.random(alive.shape[1])
    else:
        neuron_scores = np.where(alive, scores, 0.0).sum(axis=0)
    dying = _lowest_fraction(neuron_scores, alive.any(axis=0), rule.rate)
    return np.broadcast_to(~dying, alive.shape)


def _lowest_fraction(scores: np.ndarray, candidates: np.ndarray, rate: float) -> np.ndarray:
    """Along axis 0: the ⌊rate × #candidates⌋ candidates with the lowest scores (bool mask).

    Ties go to the lower index (a stable sort). The tiny slack keeps a decimal rate
    such as 0.29 of 100 at 29 despite 0.29 being stored as 0.28999….
    """
    n_dying = np.floor(rate * candidates.sum(axis=0) + 1e-9)
    # Sort by (not a candidate, score): candidates first, lowest score first, stable.
    order = np.lexsort((scores, ~candidates), axis=0)
    positions = np.arange(scores.shape[0]).reshape((-1,) + (1,) * (scores.ndim - 1))
    dying = np.empty(scores.shape, dtype=bool)
    np.put_along_axis(dying, order, positions < n_dying, axis=0)
    return dying


_SCOPE_SURVIVORS: dict[str, Callable[[np.ndarray | None, np.ndarray, _Rule], np.ndarray]] = {
    "kernel": _kernel_survivors,
    "contribution": _contribution_survivors,
    "sorted_kernels": _sorted_kernel_survivors,
    "sorted_neurons": _sorted_neuron_survivors,
}


def prune_mask(
    mode: str | Mode,
    kernel: np.ndarray,
    mask: np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    contribution_threshold: float = DEFAULT_CONTRIBUTION_THRESHOLD,
    rate: float = DEFAULT_RATE,
    rng: np.random.Generator | None = None,
    stats: KernelStatistics | None = None,
    layer: str | None = None,
) -> np.ndarray:
    """The new (C_in, C_out) float32 0/1 mask of one Conv2D layer after pruning by ``mode``.

    ``kernel`` is the Keras kernel (kh, kw, C_in, C_out), ``mask`` the current mask
    (nonzero = alive); a kernel alive in the result is alive in ``mask``. ``stats``
    may carry precomputed statistics of ``layer_kernels(kernel)`` (shape (C_in, C_out))
    so comparing many modes computes them once; ``rng`` drives the random modes
    (default: ``numpy.random.default_rng(0)``). PsykError for an unknown mode, bad
    parameters, eigenvalue/determinant modes on non-square kernels (see ``Mode.applies_to``),
    and NaN or infinite weights, whatever the mode (the random ones too).
    """
    spec = mode if isinstance(mode, Mode) else get_mode(mode)
    validate_pruning_parameters(threshold, contribution_threshold, rate)
    kernels = layer_kernels(kernel)
    alive = np.asarray(mask) != 0
    if alive.shape != kernels.shape[:2]:
        raise ValueError(f"mask shape {alive.shape} does not match the kernel's (C_in, C_out) {kernels.shape[:2]}")
    require_finite(kernels, layer)

    scores = None
    if spec.statistic is not None:
        require_applicable((spec.statistic,), kernels.shape[2:], layer)
        if stats is None:
            stats = kernel_statistics(kernels, (spec.statistic,), layer=layer)
        elif stats.shape != alive.shape:
            raise ValueError(f"statistics of shape {stats.shape} given for a layer of {alive.shape} kernels")
        scores = np.abs(stats[spec.statistic])

    rule = _Rule(
        statistic=spec.statistic,
        threshold=float(threshold),
        contribution_threshold=float(contribution_threshold),
        rate=float(rate),
        kernel_size=kernels.shape[2],
        rng=rng if rng is not None else np.random.default_rng(0),
    )
    survivors = _SCOPE_SURVIVORS[spec.scope](scores, alive, rule)
    return (alive & survivors).astype(np.float32)
