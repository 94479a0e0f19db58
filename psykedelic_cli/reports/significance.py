"""``significance``: is one criterion better than another by more than seed noise?

Per setting group (dataset, model, init mode, threshold and every other setting that
differs among the runs, as in ``performance``) and per category (compression ratio,
score, accuracy), the criteria are compared over paired **blocks**:

- ``compared``: the criteria compared on the same trained weights at the end of the first
  stage (``results.performance``). Runs of one seed in a group share that first stage
  (psyk trains it once and branches per mode), so they form one block, not several; runs
  without a seed are a block each. The unpruned "None" row is the reference, not a criterion.
- ``trained``: modes trained in separate runs (``results.final``), paired by seed: a block
  is a seed that every trained mode of the group has a run for.

Only complete blocks (every criterion present) are used; the output says how many.
Then ``rank_tests.compare``: Friedman, Nemenyi CD, Wilcoxon with Holm, bootstrap intervals.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar, Sequence

import numpy as np

from psykedelic_cli.errors import NothingFound
from psykedelic_cli.reports import grid as render
from psykedelic_cli.reports.aggregate import (
    config_value,
    format_value,
    group_by_config,
    group_stem,
    group_title,
    settings_text,
    varying_settings,
)
from psykedelic_cli.reports.palette import mode_sort_key
from psykedelic_cli.reports.performance import CATEGORIES, CATEGORY_LABELS, CELL_FIELDS
from psykedelic_cli.reports.rank_tests import DEFAULT_ALPHA, RankComparison, compare
from psykedelic_cli.reports.report import Chart, Report
from psykedelic_cli.store.schema import BASELINE

PAIRINGS = {
    "compared": "criteria compared on the same trained weights; a block is one first stage (the runs of one seed, "
    "or one run without a seed)",
    "trained": "modes trained in separate runs, paired by seed; a block is one seed",
}
_PAIRING_SHORT = {
    "compared": "criteria compared on the same weights, one block per first stage",
    "trained": "modes trained separately, paired by seed",
}
_TITLE_WIDTH = 70
"""Characters per line of a chart title at the paper width."""
_NAMED_BLOCKS = 12
"""Captions name the blocks of comparisons with at most this many."""
RECORD_FIELDS = (
    "pairing", "category", "record", "criterion", "versus", "blocks", "criteria", "mean_rank", "mean", "std",
    "difference", "ci_low", "ci_high", "rank_difference", "nemenyi_p", "wilcoxon", "wilcoxon_p", "holm_p",
    "friedman_chi2", "friedman_df", "friedman_p", "iman_davenport_f", "iman_davenport_p", "critical_difference",
    "alpha", "no_test",
)
"""After the group fields. ``record`` is "friedman" (one per comparison), "criterion" or "pair"."""


@dataclass(frozen=True)
class Blocks:
    """Paired observations of one category: ``values[b, t]`` of criterion ``treatments[t]`` in block ``b``."""

    treatments: tuple[str, ...]
    values: np.ndarray
    runs: tuple[tuple[str, ...], ...]
    """The run ids behind each block."""
    labels: tuple[str, ...] = ()
    """What each block is: "seed 0", or "run <id>" for a run without a seed."""
    incomplete: int = 0
    """Blocks left out because some criterion is missing in them."""


@dataclass(frozen=True)
class Comparison:
    key: tuple
    pairing: str
    category: str
    blocks: Blocks
    result: RankComparison


@dataclass
class SignificanceReport(Report):
    """A report whose tables are ``Grid``s of test results and whose CSV/JSON are ``records``."""

    records: list[dict] = field(default_factory=list)

    renderer: ClassVar = render

    def long_format(self, table_format: str) -> str:
        if table_format == "csv":
            return render.records_csv(self.records, self.record_fields)
        return render.records_json(
            self.name, self.records, self.record_fields,
            procedure="Friedman test, Nemenyi critical difference (Demsar 2006), pairwise Wilcoxon signed-rank "
            "(zero differences split) with Holm correction, percentile bootstrap of the mean paired difference",
        )


BlockKey = tuple[str, object]
"""("seed", 0) or ("run", id)."""


def block_matrix(observations: dict[BlockKey, dict[str, list[float]]], runs: dict[BlockKey, list[str]]) -> Blocks:
    """Complete blocks of ``{block: {criterion: [values]}}`` (a criterion's values in one block averaged)."""
    treatments = tuple(sorted({t for block in observations.values() for t in block}, key=mode_sort_key))
    complete = [b for b, block in observations.items() if all(t in block for t in treatments)]
    values = np.array([[_mean(observations[b][t]) for t in treatments] for b in complete]).reshape(
        len(complete), len(treatments)
    )
    labels = tuple(f"{kind} {format_value(value)}" for kind, value in complete)
    return Blocks(
        treatments, values, tuple(tuple(runs[b]) for b in complete), labels, len(observations) - len(complete)
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _finite(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def compared_blocks(members: Sequence[dict], category: str, modes: Sequence[str] | None) -> Blocks:
    observations: dict[BlockKey, dict[str, list[float]]] = {}
    runs: dict[BlockKey, list[str]] = {}
    for run in members:
        seed = config_value(run, "seed")
        block = ("seed", seed) if seed is not None else ("run", run["id"])
        runs.setdefault(block, []).append(run["id"])
        for mode, row in (run["results"].get("performance") or {}).items():
            if mode == BASELINE or (modes and mode not in modes):
                continue
            if (value := _finite((row or {}).get(category))) is not None:
                observations.setdefault(block, {}).setdefault(mode, []).append(value)
    return block_matrix(observations, runs)


def trained_blocks(members: Sequence[dict], category: str, modes: Sequence[str] | None) -> Blocks:
    observations: dict[BlockKey, dict[str, list[float]]] = {}
    runs: dict[BlockKey, list[str]] = {}
    for run in members:
        seed, mode = config_value(run, "seed"), config_value(run, "mode")
        final = run["results"].get("final") or {}
        value = _finite(final.get(category))
        if seed is None or mode is None or value is None or (modes and mode not in modes):
            continue
        runs.setdefault(("seed", seed), []).append(run["id"])
        observations.setdefault(("seed", seed), {}).setdefault(mode, []).append(value)
    return block_matrix(observations, runs)


def significance_report(
    runs: Sequence[dict], *, modes: Sequence[str] | None = None, alpha: float = DEFAULT_ALPHA, seed: int = 0
) -> SignificanceReport:
    """The significance report of ``runs``: every (group, pairing, category) with at least two criteria."""
    runs = [r for r in runs if (r.get("results") or {}).get("performance") or (r.get("results") or {}).get("final")]
    if not runs:
        raise NothingFound("no matching run has performance or final results")
    splits = varying_settings(runs, exclude=CELL_FIELDS)
    fields = (*CELL_FIELDS, *splits)
    comparisons = []
    for key, members in group_by_config(runs, fields).items():
        trained_modes = {config_value(r, "mode") for r in members if (r["results"].get("final") or {})} - {None}
        for pairing, blocks_of in (("compared", compared_blocks), ("trained", trained_blocks)):
            if pairing == "trained" and len(trained_modes) < 2:
                continue
            for category in CATEGORIES:
                blocks = blocks_of(members, category, modes)
                if len(blocks.treatments) < 2 or not len(blocks.values):
                    continue
                comparisons.append(Comparison(
                    key, pairing, category, blocks, compare(blocks.values, blocks.treatments, alpha=alpha, seed=seed)
                ))
    if not comparisons:
        wanted = f" among the mode(s) {', '.join(modes)}" if modes else ""
        raise NothingFound(f"no matching run pairs two or more criteria{wanted} in a complete block")
    tables, records = [], []
    for comparison in comparisons:
        tables += comparison_grids(comparison, fields, splits)
        records += comparison_records(comparison, fields)
    charts = []
    for key in dict.fromkeys(c.key for c in comparisons):
        for pairing in PAIRINGS:
            chosen = [c for c in comparisons if c.key == key and c.pairing == pairing]
            if chosen:
                charts.append(Chart(
                    f"significance_{pairing}_{group_stem(fields, key)}",
                    partial(draw_critical_differences, group_title(fields, key), pairing, chosen),
                ))
    return SignificanceReport(
        name="significance", record_fields=(*fields, *RECORD_FIELDS), tables=tables, charts=charts,
        records=records,
    )


def _percent(value: float) -> str:
    return f"{value * 100:.2f}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def friedman_text(result: RankComparison) -> str:
    if result.no_test and result.friedman is None and result.critical_difference is None:
        return result.no_test
    parts = []
    if result.friedman is not None:
        f = result.friedman
        parts.append(
            f"Friedman χ² = {f.chi2:.3f} (df {f.df}), p = {_p(f.p)}; Iman–Davenport F = {f.f:.3f} "
            f"(df {f.f_df[0]}, {f.f_df[1]}), p = {_p(f.f_p)}"
        )
    else:
        parts.append(result.no_test)
    if result.critical_difference is not None:
        parts.append(f"Nemenyi CD (α = {result.alpha:g}) = {result.critical_difference:.3f} ranks")
    return "; ".join(parts)


def comparison_grids(comparison: Comparison, fields: Sequence[str], splits: Sequence[str]) -> list[render.Grid]:
    """Two grids: the criteria (mean rank, mean ± std) and the pairs (difference, interval, p-values)."""
    result, blocks = comparison.result, comparison.blocks
    key = comparison.key
    dataset, model, init_mode, threshold, *split_values = key
    setting = f"{dataset}, {model}, init {init_mode}, threshold {format_value(threshold)}"
    if split_values:
        setting += f" ({settings_text(splits, split_values)})"
    unit = "block" if blocks.values.shape[0] == 1 else "blocks"
    title = (
        f"Significance of {CATEGORY_LABELS[comparison.category].lower()}, {setting}: {comparison.pairing}, "
        f"N = {result.blocks} {unit}, k = {len(result.treatments)}"
    )
    left_out = f" {blocks.incomplete} incomplete block(s) left out." if blocks.incomplete else ""
    named = f" Blocks: {', '.join(blocks.labels)}." if len(blocks.labels) <= _NAMED_BLOCKS else ""
    pairing_note = f"Pairing: {PAIRINGS[comparison.pairing]}.{named}{left_out}"
    run_ids = tuple(run for block in blocks.runs for run in block)
    order = sorted(range(len(result.treatments)), key=lambda i: result.mean_ranks[i])
    best = min(result.mean_ranks)
    criteria = render.Grid(
        title=title,
        header=("Criterion", "Mean rank", "Mean (%)", "Std (%)"),
        rows=[
            (result.treatments[i], f"{result.mean_ranks[i]:.3f}", _percent(result.means[i]), _percent(result.stds[i]))
            for i in order
        ],
        caption=f"{friedman_text(result)}. Rank 1 = best of a block (ties share the mean rank); bold: the best "
        f"mean rank; mean ± population std over the blocks. {pairing_note}",
        strong={(r, 1) for r, i in enumerate(order) if result.mean_ranks[i] == best},
        runs=run_ids,
    )
    alpha = result.alpha
    pair_rows, strong = [], set()
    for r, pair in enumerate(result.pairs):
        interval = "–" if math.isnan(pair.low) else f"[{_percent(pair.low)}, {_percent(pair.high)}]"
        nemenyi = "–"
        if result.critical_difference is not None:
            nemenyi = "yes" if abs(pair.rank_difference) >= result.critical_difference else "no"
        pair_rows.append((
            pair.a, pair.b, _percent(pair.difference), interval, f"{pair.rank_difference:+.3f}", _p(pair.nemenyi_p),
            nemenyi, "–" if pair.wilcoxon is None else f"{pair.wilcoxon:g}",
            pair.no_test or _p(pair.wilcoxon_p), _p(pair.holm_p),
        ))
        if pair.holm_p is not None and pair.holm_p <= alpha:
            strong.add((r, 9))
        if nemenyi == "yes":
            strong.add((r, 6))
    pairs = render.Grid(
        title=f"Pairs, {title}",
        header=(
            "A", "B", "A − B (pp)", "95% CI (pp)", "Δ mean rank", "Nemenyi p", "|Δ| ≥ CD", "Wilcoxon W",
            "Wilcoxon p", "Holm p",
        ),
        rows=pair_rows,
        label_columns=2,
        caption=f"A − B: mean paired difference in percentage points with its seeded percentile bootstrap "
        f"interval (blocks resampled); Δ mean rank > 0 when A ranks better. Wilcoxon signed-rank, zero differences "
        f"split between the rank sums; Holm-adjusted over the {len(result.pairs)} pairs; bold: significant at "
        f"α = {alpha:g}.{_wilcoxon_floor(result.blocks, alpha)} {pairing_note}",
        strong=strong,
        runs=run_ids,
    )
    return [criteria, pairs]


def _wilcoxon_floor(blocks: int, alpha: float) -> str:
    """A warning when ``blocks`` are too few for any two-sided Wilcoxon p to reach ``alpha``
    (its smallest exact value is 2 / 2^N: every difference of one sign)."""
    if blocks < 2 or 2 / 2**blocks <= alpha:
        return ""
    return f" With N = {blocks} blocks no Wilcoxon p can be below {2 / 2**blocks:.3g}: more seeds are needed."


def comparison_records(comparison: Comparison, fields: Sequence[str]) -> list[dict]:
    """The long-format records of one comparison, in the stored units (fractions)."""
    result = comparison.result
    base = {
        **dict(zip(fields, comparison.key)), "pairing": comparison.pairing, "category": comparison.category,
        "blocks": result.blocks, "criteria": len(result.treatments), "alpha": result.alpha,
    }
    f = result.friedman
    records = [{
        **base, "record": "friedman", "friedman_chi2": f and f.chi2, "friedman_df": f and f.df,
        "friedman_p": f and f.p, "iman_davenport_f": f and _finite(f.f), "iman_davenport_p": f and f.f_p,
        "critical_difference": result.critical_difference, "no_test": result.no_test or None,
    }]
    for i, name in enumerate(result.treatments):
        records.append({
            **base, "record": "criterion", "criterion": name, "mean_rank": result.mean_ranks[i],
            "mean": result.means[i], "std": result.stds[i],
        })
    for pair in result.pairs:
        records.append({
            **base, "record": "pair", "criterion": pair.a, "versus": pair.b, "difference": pair.difference,
            "ci_low": _finite(pair.low), "ci_high": _finite(pair.high), "rank_difference": pair.rank_difference,
            "nemenyi_p": pair.nemenyi_p, "wilcoxon": pair.wilcoxon, "wilcoxon_p": pair.wilcoxon_p,
            "holm_p": pair.holm_p, "no_test": pair.no_test or None,
        })
    return records


def draw_critical_differences(title: str, pairing: str, comparisons: Sequence[Comparison]):
    """One critical-difference diagram (Demšar 2006, Fig. 1a) per category: the mean ranks on an
    axis with the best (rank 1) on the right, criteria whose ranks differ by less than the CD joined
    by a thick bar, the CD drawn above the axis."""
    from psykedelic_cli.reports import charts

    most = max(len(c.result.treatments) for c in comparisons)
    panel = 1.0 + 0.22 * math.ceil(most / 2)
    heading = 0.2 * (3 + len(textwrap.wrap(title, _TITLE_WIDTH)))
    figure, axes = charts.figure(charts.PAPER_WIDTH, heading + panel * len(comparisons), nrows=len(comparisons))
    for ax, comparison in zip(np.atleast_1d(axes), comparisons):
        _cd_panel(ax, comparison.result)
        n = comparison.result.blocks
        ax.set_title(f"{CATEGORY_LABELS[comparison.category]} (N = {n} block{'' if n == 1 else 's'})", loc="left")
    lines = [
        f"Critical difference diagram (Nemenyi, α = {comparisons[0].result.alpha:g})",
        *textwrap.wrap(title, _TITLE_WIDTH),
        _PAIRING_SHORT[pairing],
        "thick bars join criteria whose mean ranks differ by less than the CD",
    ]
    figure.suptitle("\n".join(lines))
    return figure


def cliques(ranks: Sequence[float], cd: float) -> list[tuple[int, int]]:
    """``(first, last)`` index ranges of the rank-sorted criteria that no pair within differs by ≥ ``cd``:
    the maximal runs of consecutive ranks, each not inside another, only those of two or more."""
    ordered = sorted(ranks)
    spans = []
    for first in range(len(ordered)):
        last = first
        while last + 1 < len(ordered) and ordered[last + 1] - ordered[first] < cd:
            last += 1
        if last > first and not any(a <= first and last <= b for a, b in spans):
            spans.append((first, last))
    return spans


def _cd_panel(ax, result: RankComparison) -> None:
    from psykedelic_cli.reports import charts

    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)
    k = len(result.treatments)
    if result.critical_difference is None:
        charts.no_data(ax, result.no_test)
        return
    order = sorted(range(k), key=lambda i: result.mean_ranks[i])
    ranks = [result.mean_ranks[i] for i in order]
    cd = result.critical_difference
    groups = cliques(ranks, cd)
    lines = math.ceil(k / 2)
    first_label = -0.45 - 0.18 * len(groups)
    step = 0.42
    margin = 0.55 * (k - 1) + 0.4  # room beside the axis for the names
    ax.set_xlim(k + margin, 1 - margin)  # reversed: the best rank on the right, as Demšar draws it
    ax.set_ylim(first_label - step * (lines - 0.5), 1.0)
    ax.hlines(0, 1, k, color="black", linewidth=1)
    for tick in range(1, k + 1):
        ax.vlines(tick, 0, 0.1, color="black", linewidth=1)
        ax.text(tick, 0.14, str(tick), ha="center", va="bottom", fontsize=8)
    cd_end = min(k, 1 + cd)
    ax.hlines(0.62, 1, cd_end, color="black", linewidth=1.5)
    ax.vlines([1, cd_end], 0.55, 0.69, color="black", linewidth=1)
    label = f"CD = {cd:.2f}" + (" (wider than the axis: no pair can differ)" if 1 + cd > k else "")
    ax.text((1 + cd_end) / 2, 0.72, label, ha="center", va="bottom", fontsize=8)
    for position, (index, rank) in enumerate(zip(order, ranks)):
        right = position < lines  # the better half reads from the right
        row = position if right else k - 1 - position
        y = first_label - step * row
        end = 1 - 0.15 if right else k + 0.15
        ax.vlines(rank, y, 0, color="#444444", linewidth=0.8)
        ax.hlines(y, rank, end, color="#444444", linewidth=0.8)
        ax.text(
            end, y, f" {result.treatments[index]} ({rank:.2f}) ", ha="left" if right else "right", va="center",
            fontsize=8,
        )
    for level, (first, last) in enumerate(groups):
        y = -0.3 - 0.18 * level
        ax.hlines(y, ranks[first] - 0.04, ranks[last] + 0.04, color="black", linewidth=3.5)
