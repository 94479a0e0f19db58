"""Rank tests over paired blocks: Friedman, Nemenyi, pairwise Wilcoxon with Holm, paired bootstrap.

The data is a (blocks × treatments) matrix where higher is better: a block is one set of
paired observations (criteria compared on the same trained weights, or modes trained from
the same seed), a treatment one criterion. The procedure is Demšar's (*Statistical
Comparisons of Classifiers over Multiple Data Sets*, JMLR 7, 2006): rank the treatments
within each block (1 = best, ties averaged), test the mean ranks with Friedman's χ² and
its Iman–Davenport F, and compare every pair by the Nemenyi critical difference
``CD = q_α √(k(k+1)/(6N))`` with ``q_α`` the studentized range quantile over √2. Every
distribution comes from scipy; the only arithmetic here is Demšar's formulas, Holm's
step-down adjustment and the resampling of blocks.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

DEFAULT_ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 10_000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Friedman:
    """Friedman's χ² (tie-corrected, as scipy computes it) with ``df = k - 1`` and its p-value,
    and Iman & Davenport's ``F = (N-1)χ² / (N(k-1) - χ²)`` on (k-1, (k-1)(N-1)) degrees of freedom."""

    chi2: float
    df: int
    p: float
    f: float
    f_df: tuple[int, int]
    f_p: float


@dataclass(frozen=True)
class Pair:
    """Two treatments compared: ``a`` minus ``b``."""

    a: str
    b: str
    difference: float
    """Mean paired difference over the blocks (a - b, in the data's units)."""
    low: float
    high: float
    """The percentile bootstrap interval of ``difference`` (blocks resampled)."""
    rank_difference: float
    """Mean rank of ``b`` minus mean rank of ``a``: positive when ``a`` ranks better."""
    nemenyi_p: float | None
    wilcoxon: float | None
    """Wilcoxon's statistic: the smaller rank sum, zero differences split between both sums."""
    wilcoxon_p: float | None
    holm_p: float | None
    """``wilcoxon_p`` adjusted by Holm's step-down procedure over every pair of the comparison."""
    no_test: str = ""
    """Why there is no Wilcoxon p-value ("" when there is one)."""


@dataclass(frozen=True)
class RankComparison:
    treatments: tuple[str, ...]
    blocks: int
    alpha: float
    mean_ranks: tuple[float, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    friedman: Friedman | None
    critical_difference: float | None
    pairs: tuple[Pair, ...]
    no_test: str = ""
    """Why there is no Friedman test ("" when there is one): too few blocks or criteria, all ties."""

    def pair(self, a: str, b: str) -> Pair:
        return next(p for p in self.pairs if (p.a, p.b) == (a, b))


def mean_ranks(values: np.ndarray) -> np.ndarray:
    """Mean rank of every treatment (column); rank 1 is the highest value of a block, ties share the mean rank."""
    from scipy.stats import rankdata

    return rankdata(-np.asarray(values, dtype=float), axis=1).mean(axis=0)


def iman_davenport(chi2: float, blocks: int, treatments: int) -> tuple[float, float]:
    """``(F_F, p)``: Iman & Davenport's F of Friedman's ``chi2`` and its p-value from the F distribution."""
    from scipy.stats import f as f_distribution

    denominator = blocks * (treatments - 1) - chi2
    if denominator <= 0:  # every block ranks the treatments alike: F is infinite
        return math.inf, 0.0
    f = (blocks - 1) * chi2 / denominator
    return f, float(f_distribution.sf(f, treatments - 1, (treatments - 1) * (blocks - 1)))


def friedman(values: np.ndarray) -> Friedman:
    """The Friedman test of a (blocks × treatments) matrix (k ≥ 3, not every block all ties)."""
    from scipy.stats import friedmanchisquare

    blocks, treatments = values.shape
    result = friedmanchisquare(*values.T)
    chi2 = float(result.statistic)
    f, f_p = iman_davenport(chi2, blocks, treatments)
    f_df = (treatments - 1, (treatments - 1) * (blocks - 1))
    return Friedman(chi2, treatments - 1, float(result.pvalue), f, f_df, f_p)


@lru_cache(maxsize=None)
def nemenyi_q(treatments: int, alpha: float = DEFAULT_ALPHA) -> float:
    """Demšar's ``q_α``: the studentized range quantile (k treatments, infinite df) over √2."""
    from scipy.stats import studentized_range

    return float(studentized_range.ppf(1 - alpha, treatments, np.inf)) / math.sqrt(2)


def rank_standard_error(treatments: int, blocks: int) -> float:
    """``√(k(k+1)/(6N))``: the standard error of a difference of two mean ranks."""
    return math.sqrt(treatments * (treatments + 1) / (6 * blocks))


def critical_difference(treatments: int, blocks: int, alpha: float = DEFAULT_ALPHA) -> float:
    """The Nemenyi CD: two mean ranks that differ by at least this differ at level ``alpha``."""
    return nemenyi_q(treatments, alpha) * rank_standard_error(treatments, blocks)


def nemenyi_p(rank_difference: float, treatments: int, blocks: int) -> float:
    """The Nemenyi p-value of a mean-rank difference (the studentized range survival function)."""
    from scipy.stats import studentized_range

    z = abs(rank_difference) / rank_standard_error(treatments, blocks)
    return float(studentized_range.sf(z * math.sqrt(2), treatments, np.inf))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: the i-th smallest (from 0) times (m - i), kept
    non-decreasing, capped at 1; a hypothesis is rejected at α when its adjusted p ≤ α."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for step, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - step) * p_values[i]))
        adjusted[i] = running
    return adjusted


def paired_bootstrap(
    values: np.ndarray, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``: (k × k) percentile intervals of the mean difference column i - column j.

    Blocks are resampled with replacement, the same draw for every pair, so each pair keeps
    its pairing; a draw is counted per block, which makes the resampled means one matrix
    product. Seeded: the same data and seed give the same interval.
    """
    blocks = values.shape[0]
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, blocks, size=(resamples, blocks))
    offsets = (np.arange(resamples) * blocks)[:, None]
    counts = np.bincount((drawn + offsets).ravel(), minlength=resamples * blocks).reshape(resamples, blocks)
    means = counts @ values / blocks  # (resamples × k)
    differences = means[:, :, None] - means[:, None, :]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail], axis=0)
    return low, high


def _wilcoxon(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Wilcoxon's signed-rank statistic and two-sided p, zero differences split between the
    rank sums (Demšar: ties support the null hypothesis)."""
    from scipy.stats import wilcoxon

    with warnings.catch_warnings():  # scipy notes that its normal approximation is rough for few blocks
        warnings.simplefilter("ignore")
        result = wilcoxon(a, b, zero_method="zsplit")
    return float(result.statistic), float(result.pvalue)


def compare(
    values: np.ndarray, treatments: Sequence[str], *, alpha: float = DEFAULT_ALPHA, seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> RankComparison:
    """Every test of a (blocks × treatments) matrix of finite values (at least one block), higher is better.

    Fewer than 2 blocks, or every block all ties, leave the p-values ``None`` with the
    reason in ``no_test``; Friedman needs at least 3 treatments (2 are still compared
    pairwise). Pairs come in ``treatments`` order, ``a`` before ``b``; the bootstrap
    interval needs 2 blocks (NaN with one).
    """
    values = np.asarray(values, dtype=float)
    blocks, k = values.shape
    ranks = mean_ranks(values)
    all_ties = bool(np.all(values == values[:, :1]))
    no_test = ""
    if blocks < 2:
        no_test = "1 block: no test (needs at least 2)"
    elif all_ties:
        no_test = "all ties: every block gives every criterion the same value"
    elif k < 3:
        no_test = "Friedman needs at least 3 criteria"
    testable = blocks >= 2 and not all_ties
    if blocks >= 2:
        low, high = paired_bootstrap(values, seed, resamples)
    else:
        low = high = np.full((k, k), np.nan)
    raw: list[tuple] = []
    for i, j in itertools.combinations(range(k), 2):
        difference = values[:, i] - values[:, j]
        reason = no_test if blocks < 2 else "all ties" if np.all(difference == 0) else ""
        statistic, p = (None, None) if reason else _wilcoxon(values[:, i], values[:, j])
        raw.append((i, j, float(difference.mean()), statistic, p, reason))
    adjusted = iter(holm([p for *_, p, _ in raw if p is not None]))
    pairs = tuple(
        Pair(
            a=treatments[i], b=treatments[j], difference=difference, low=float(low[i, j]), high=float(high[i, j]),
            rank_difference=float(ranks[j] - ranks[i]),
            nemenyi_p=nemenyi_p(ranks[j] - ranks[i], k, blocks) if testable else None,
            wilcoxon=statistic, wilcoxon_p=p, holm_p=None if p is None else next(adjusted), no_test=reason,
        )
        for i, j, difference, statistic, p, reason in raw
    )
    return RankComparison(
        treatments=tuple(treatments), blocks=blocks, alpha=alpha, mean_ranks=tuple(map(float, ranks)),
        means=tuple(map(float, values.mean(axis=0))), stds=tuple(map(float, values.std(axis=0))),
        friedman=None if no_test else friedman(values),
        critical_difference=critical_difference(k, blocks, alpha) if testable else None,
        pairs=pairs, no_test=no_test,
    )
