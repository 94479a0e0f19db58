"""The rank tests against scipy on hand-made blocks and against Demšar's worked example.

Demšar, "Statistical Comparisons of Classifiers over Multiple Data Sets", JMLR 7 (2006):
Table 6 gives the AUC of four C4.5 variants on 14 data sets with the ranks used (in
parentheses) and, in section 3.2.2, mean ranks 3.143, 2.000, 2.893, 1.964, χ²_F = 9.28,
F_F = 3.69 (critical F(3, 39) at 0.05: 2.85), q_0.05 = 2.569 and CD = 1.25 (1.12 at 0.10).
Section 3.1.3 (Table 2, the same first two columns): Wilcoxon's R+ = 93, R- = 12.
"""

import math

import numpy as np
import pytest
from scipy import stats

from psykedelic_cli.reports import rank_tests

NAMES = ("C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf")
AUC = np.array([  # Demšar 2006, Table 6 (adult (sample) … wine)
    [0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967],
    [0.628, 0.661, 0.654, 0.657], [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
    [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625], [0.775, 0.838, 0.866, 0.875],
    [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
    [0.972, 0.981, 0.975, 0.975], [0.957, 0.978, 0.946, 0.970],
])
PRINTED_RANKS = np.array([  # the ranks in parentheses in Table 6
    [4, 3, 2, 1], [1, 2, 3, 4], [4, 1, 2, 3], [4, 1, 3, 2], [4, 2, 3, 1], [1, 2.5, 4, 2.5], [3, 2, 4, 1],
    [2.5, 2.5, 4, 1], [4, 3, 2, 1], [2.5, 2.5, 2.5, 2.5], [4, 2.5, 1, 2.5], [3, 2, 4, 1], [4, 1, 2, 3], [3, 1, 4, 2],
])
VOTING = 12
"""The voting row prints 0.975 twice but ranks them 2 and 3: the unrounded AUCs differed."""


@pytest.fixture
def demsar() -> np.ndarray:
    """Table 6 with the voting tie broken as the paper's ranks break it (C4.5+cf ahead)."""
    data = AUC.copy()
    data[VOTING, 2] += 1e-4
    return data


def test_our_ranks_are_the_printed_ranks_of_table_6(demsar):
    from scipy.stats import rankdata

    assert np.array_equal(rankdata(-demsar, axis=1), PRINTED_RANKS)
    differs = np.flatnonzero(np.any(rankdata(-AUC, axis=1) != PRINTED_RANKS, axis=1))
    assert differs.tolist() == [VOTING]  # only the row whose printed values tie


def test_demsar_mean_ranks_friedman_and_iman_davenport(demsar):
    result = rank_tests.compare(demsar, NAMES)
    assert np.round(result.mean_ranks, 3).tolist() == [3.143, 2.000, 2.893, 1.964]
    # scipy corrects χ² for ties (iris, lung cancer, mushroom, primary tumor); Demšar's formula does not.
    ties = sum(t**3 - t for row in demsar for t in np.unique(row, return_counts=True)[1])
    n, k = demsar.shape
    uncorrected = result.friedman.chi2 * (1 - ties / (n * k * (k * k - 1)))
    assert round(uncorrected, 2) == 9.28
    assert result.friedman.chi2 == pytest.approx(stats.friedmanchisquare(*demsar.T).statistic)
    f, p = rank_tests.iman_davenport(uncorrected, n, k)
    assert round(f, 2) == 3.69
    assert result.friedman.f_df == (3, 39)
    assert round(stats.f.ppf(0.95, 3, 39), 2) == 2.85 and p < 0.05  # "so we reject the null-hypothesis"


def test_demsar_critical_differences():
    assert round(rank_tests.nemenyi_q(4, 0.05), 3) == 2.569
    assert round(rank_tests.critical_difference(4, 14, 0.05), 2) == 1.25
    assert round(rank_tests.critical_difference(4, 14, 0.10), 2) == 1.12
    assert round(rank_tests.rank_standard_error(4, 14), 3) == 0.488


@pytest.mark.parametrize(
    ("alpha", "printed"),
    [
        (0.05, [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]),
        (0.10, [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920]),
    ],
)
def test_nemenyi_q_is_demsar_table_5a(alpha, printed):
    # Some printed values are cut, not rounded, at the third decimal (2.3437 reads 2.343)
    assert [rank_tests.nemenyi_q(k, alpha) for k in range(2, 11)] == pytest.approx(printed, abs=1e-3)


def test_demsar_nemenyi_finds_nothing_at_005_and_two_groups_at_010(demsar):
    at_05 = rank_tests.compare(demsar, NAMES, alpha=0.05)
    assert all(abs(p.rank_difference) < at_05.critical_difference for p in at_05.pairs)
    at_10 = rank_tests.compare(demsar, NAMES, alpha=0.10)
    significant = {(p.a, p.b) for p in at_10.pairs if abs(p.rank_difference) >= at_10.critical_difference}
    assert significant == {("C4.5", "C4.5+m"), ("C4.5", "C4.5+m+cf")}
    worst = at_05.pair("C4.5", "C4.5+m+cf")
    assert round(-worst.rank_difference, 3) == 1.179 and worst.nemenyi_p > 0.05


def test_demsar_wilcoxon_of_table_2_splits_the_zero_differences():
    result = rank_tests.compare(AUC[:, :2], NAMES[:2])
    pair = result.pair("C4.5", "C4.5+m")
    assert pair.wilcoxon == 12  # min(R+ = 93, R- = 12)
    assert pair.wilcoxon_p < 0.05  # "We therefore reject the null-hypothesis"
    assert result.friedman is None and result.no_test == "Friedman needs at least 3 criteria"


def test_holm_on_demsars_three_p_values():
    adjusted = rank_tests.holm([0.016, 0.019, 0.607])
    assert adjusted == pytest.approx([0.048, 0.048, 0.607])
    assert [p <= 0.05 for p in adjusted] == [True, True, False]  # rejects the first two, as the paper's Holm does


def test_holm_keeps_order_and_caps_at_one():
    assert rank_tests.holm([0.04, 0.01, 0.5, 0.03]) == pytest.approx([0.09, 0.04, 0.5, 0.09])
    assert rank_tests.holm([0.6, 0.7]) == [1.0, 1.0]
    assert rank_tests.holm([]) == []


@pytest.fixture
def blocks() -> np.ndarray:
    """Eight blocks × four treatments, treatment effects 0, 0.01, 0.02, 0.05 plus noise and a block effect."""
    rng = np.random.default_rng(7)
    return rng.normal(0, 0.01, (8, 4)) + np.array([0.0, 0.01, 0.02, 0.05]) + rng.normal(0.9, 0.02, (8, 1))


def test_every_statistic_is_scipys_on_hand_made_blocks(blocks):
    names = ("a", "b", "c", "d")
    result = rank_tests.compare(blocks, names)
    expected = stats.friedmanchisquare(*blocks.T)
    assert (result.friedman.chi2, result.friedman.p) == pytest.approx((expected.statistic, expected.pvalue))
    assert result.mean_ranks == pytest.approx(stats.rankdata(-blocks, axis=1).mean(axis=0))
    n, k = blocks.shape
    f = (n - 1) * expected.statistic / (n * (k - 1) - expected.statistic)
    assert (result.friedman.f, result.friedman.f_p) == pytest.approx((f, stats.f.sf(f, k - 1, (k - 1) * (n - 1))))
    assert result.means == pytest.approx(blocks.mean(axis=0)) and result.stds == pytest.approx(blocks.std(axis=0))
    raw = []
    for pair in result.pairs:
        i, j = names.index(pair.a), names.index(pair.b)
        w = stats.wilcoxon(blocks[:, i], blocks[:, j], zero_method="zsplit")
        assert (pair.wilcoxon, pair.wilcoxon_p) == pytest.approx((w.statistic, w.pvalue))
        assert pair.difference == pytest.approx((blocks[:, i] - blocks[:, j]).mean())
        z = abs(result.mean_ranks[i] - result.mean_ranks[j]) / math.sqrt(k * (k + 1) / (6 * n))
        assert pair.nemenyi_p == pytest.approx(stats.studentized_range.sf(z * math.sqrt(2), k, np.inf))
        raw.append(w.pvalue)
    order = np.argsort(raw)
    for rank, index in enumerate(order):  # Holm: each adjusted p is a running max of (m - rank) p
        assert result.pairs[index].holm_p == pytest.approx(
            min(1.0, max((len(raw) - r) * raw[order[r]] for r in range(rank + 1)))
        )
    assert result.critical_difference == pytest.approx(
        stats.studentized_range.ppf(0.95, k, np.inf) / math.sqrt(2) * math.sqrt(k * (k + 1) / (6 * n))
    )


def test_bootstrap_interval_agrees_with_scipy_and_is_seeded(blocks):
    low, high = rank_tests.paired_bootstrap(blocks, seed=3, resamples=20_000)
    difference = blocks[:, 3] - blocks[:, 0]
    reference = stats.bootstrap(
        (difference,), np.mean, method="percentile", n_resamples=20_000, rng=np.random.default_rng(11)
    ).confidence_interval
    spread = difference.std()
    assert low[3, 0] == pytest.approx(reference.low, abs=0.1 * spread)
    assert high[3, 0] == pytest.approx(reference.high, abs=0.1 * spread)
    assert low[3, 0] < difference.mean() < high[3, 0]
    assert low[0, 3] == pytest.approx(-high[3, 0])  # the same resamples for both directions
    again = rank_tests.paired_bootstrap(blocks, seed=3, resamples=20_000)
    assert np.array_equal(again[0], low) and np.array_equal(again[1], high)
    assert not np.array_equal(rank_tests.paired_bootstrap(blocks, seed=4, resamples=20_000)[0], low)


def test_one_block_is_no_test():
    result = rank_tests.compare(np.array([[0.9, 0.8, 0.7]]), ("a", "b", "c"))
    assert result.no_test == "1 block: no test (needs at least 2)"
    assert result.friedman is None and result.critical_difference is None
    assert all(p.wilcoxon_p is None and p.holm_p is None and p.nemenyi_p is None for p in result.pairs)
    assert all(p.no_test == result.no_test and math.isnan(p.low) for p in result.pairs)
    assert result.pair("a", "c").difference == pytest.approx(0.2)


def test_all_ties_is_no_test_and_a_tied_pair_is_said_so():
    tied = rank_tests.compare(np.full((3, 3), 0.5), ("a", "b", "c"))
    assert tied.no_test.startswith("all ties") and tied.friedman is None and tied.critical_difference is None
    assert all(p.no_test == "all ties" for p in tied.pairs)
    partly = rank_tests.compare(np.array([[0.5, 0.5, 0.1], [0.6, 0.6, 0.3], [0.7, 0.7, 0.2]]), ("a", "b", "c"))
    assert partly.friedman is not None
    assert partly.pair("a", "b").no_test == "all ties" and partly.pair("a", "b").wilcoxon_p is None
    assert partly.pair("a", "c").wilcoxon_p is not None
    assert partly.pair("a", "c").holm_p == pytest.approx(min(1, 2 * partly.pair("a", "c").wilcoxon_p))  # 2 tested


def test_every_block_agreeing_gives_an_infinite_iman_davenport():
    result = rank_tests.compare(np.array([[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]]), ("a", "b", "c"))
    assert result.friedman.f == math.inf and result.friedman.f_p == 0.0
