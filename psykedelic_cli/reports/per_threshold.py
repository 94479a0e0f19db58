"""``per-threshold``: the share of kernels each base criterion would prune, per threshold.

Runs are aligned by threshold value. The rule a run used is part of the group key,
so a legacy "raw" run (raw |det| against t) is never averaged with an "own"-rule run
(det against tⁿ, det_corr against t²ⁿ), and every title says which rule it shows.
The threshold the run trained with does not change this analysis, so it does not split.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import numpy as np

from psykedelic_cli.reports import charts
from psykedelic_cli.reports.aggregate import (
    Stat,
    canonical,
    config_value,
    group_runs,
    group_stem,
    group_title,
    natural_key,
    runs_with,
    settings_text,
    summarize,
    varying_settings,
)
from psykedelic_cli.reports.palette import mode_sort_key, mode_style
from psykedelic_cli.reports.report import Chart, Report
from psykedelic_cli.reports.tables import Cell, Table

RULES = {
    "own": "each criterion's own rule: |det K| ≥ tⁿ, |det KᵀK| ≥ t²ⁿ, the others ≥ t",
    "raw": "the original's chart rule: raw |det K| ≥ t (legacy runs)",
}
_IRRELEVANT = ("dataset", "model", "threshold", "contribution_threshold", "rate")

CriterionStats = dict[str, dict[float, Stat]]
"""criterion → threshold → Stat of the pruned fraction."""


def aggregate_per_threshold(runs: Sequence[dict]) -> CriterionStats:
    """Mean ± std of the pruned fraction per criterion and threshold (runs aligned by threshold value)."""
    values: dict[str, dict[float, list[float | None]]] = {}
    for run in runs:
        result = run["results"]["pruning_per_threshold"]
        thresholds = [canonical(float(t)) for t in result["thresholds"]]
        for criterion, ratios in result["pruned_ratio"].items():
            per_threshold = values.setdefault(criterion, {})
            for threshold, ratio in zip(thresholds, ratios):
                per_threshold.setdefault(threshold, []).append(ratio)
    return {
        criterion: {t: stat for t in sorted(values[criterion]) if (stat := summarize(values[criterion][t]))}
        for criterion in sorted(values, key=mode_sort_key)
    }


def per_threshold_report(runs: Sequence[dict]) -> Report:
    """Tables (thresholds × criteria) per dataset, model and rule; a line chart each and a grid per rule."""
    runs = runs_with(runs, "pruning_per_threshold")
    splits = varying_settings(runs, exclude=_IRRELEVANT)

    def key(run: dict) -> tuple:
        rule = run["results"]["pruning_per_threshold"].get("rule", "own")
        return (rule, *(config_value(run, s) for s in splits), config_value(run, "dataset"), config_value(run, "model"))

    tables, report_charts = [], []
    grids: dict[tuple, dict[tuple[str, str], tuple[CriterionStats, int]]] = {}
    for (rule, *setting, dataset, model), members in group_runs(runs, key).items():
        aggregated = aggregate_per_threshold(members)
        tables.append(_table(rule, splits, setting, dataset, model, aggregated))
        title = group_title(("dataset", "model", *splits), (dataset, model, *setting))
        stem = group_stem(("dataset", "model", *splits, "rule"), (dataset, model, *setting, rule))
        report_charts.append(
            Chart(f"per_threshold_{stem}", partial(draw_per_threshold, title, rule, aggregated, len(members)))
        )
        grids.setdefault((rule, *setting), {})[(dataset, model)] = (aggregated, len(members))
    for (rule, *setting), cells in grids.items():
        if len(cells) > 1:
            stem = group_stem((*splits, "rule"), (*setting, rule))
            title = settings_text(splits, setting)
            report_charts.append(Chart(f"per_threshold_grid_{stem}", partial(draw_grid, title, rule, cells)))
    return Report(
        name="per_threshold",
        record_fields=("dataset", "model", "rule", "threshold", "criterion", *splits),
        tables=tables,
        charts=report_charts,
    )


def _table(
    rule: str, splits: Sequence[str], setting: Sequence[object], dataset: str, model: str, aggregated: CriterionStats
) -> Table:
    thresholds = sorted({t for stats in aggregated.values() for t in stats})
    rows = [(t,) for t in thresholds]
    columns = [(c,) for c in aggregated]
    title = f"Kernels pruned per threshold, {dataset}, {model}, rule {rule}"
    if setting:
        title += f" ({settings_text(splits, setting)})"
    return Table(
        title=title,
        keys={"dataset": dataset, "model": model, "rule": rule, **dict(zip(splits, setting))},
        row_fields=("threshold",),
        column_fields=("criterion",),
        rows=rows,
        columns=columns,
        cells={((t,), (c,)): Cell(stats.get(t)) for c, stats in aggregated.items() for t in thresholds},
        notes=(f"Share of kernels each criterion would prune at threshold t; {RULES.get(rule, rule)}.",),
        labels={"threshold": "t", "criterion": "Criterion"},
    )


NO_DATA = "no pruned share recorded"


def _plot_criteria(ax, aggregated: CriterionStats) -> None:
    drawn = {criterion: stats for criterion, stats in aggregated.items() if stats}  # all missing: no line
    if not drawn:
        charts.no_data(ax, NO_DATA)
        return
    for criterion, stats in drawn.items():
        thresholds = sorted(stats)
        charts.band(ax, thresholds, [stats[t] for t in thresholds], mode_style(criterion), criterion)
    ax.set_xscale("log")
    ax.set_ylim(-2, 102)


def draw_per_threshold(title: str, rule: str, aggregated: CriterionStats, runs: int):
    """Mean line and ± std band per criterion over log-spaced thresholds."""
    figure, ax = charts.figure(charts.PAPER_WIDTH, 3.6 + charts.legend_height(len(aggregated)))
    _plot_criteria(ax, aggregated)
    ax.set_xlabel("significance threshold t (log scale)")
    ax.set_ylabel("kernels pruned (%)")
    charts.legend(ax, *ax.get_legend_handles_labels(), title="criterion")
    figure.suptitle(
        f"Kernels pruned per threshold — {title}\nRule: {RULES.get(rule, rule)}\n"
        f"mean ± population std over n = {runs} runs (band: ± std)"
    )
    return figure


def draw_grid(title: str, rule: str, cells: dict[tuple[str, str], tuple[CriterionStats, int]]):
    """Small multiples: rows are models, columns datasets; one shared legend."""
    datasets = sorted({d for d, _ in cells}, key=natural_key)
    models = sorted({m for _, m in cells}, key=natural_key)
    figure, axes = charts.figure(
        charts.PAPER_WIDTH, 1.4 + 2.1 * len(models), nrows=len(models), ncols=len(datasets), sharex=True, sharey=True,
        squeeze=False,
    )
    for (row, model), (col, dataset) in ((r, c) for r in enumerate(models) for c in enumerate(datasets)):
        ax = axes[row][col]
        if (dataset, model) in cells:
            aggregated, runs = cells[(dataset, model)]
            _plot_criteria(ax, aggregated)
            ax.set_title(f"{dataset}\n{model} (n = {runs})", fontsize=8)
        else:
            ax.set_title(f"{dataset}\n{model}: no runs", fontsize=8)
        if col == 0:
            ax.set_ylabel("pruned (%)")
        if row == len(models) - 1:
            ax.set_xlabel("threshold t")
    handles = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    figure.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=4, frameon=False)
    suffix = f" ({title})" if title else ""
    figure.suptitle(
        f"Kernels pruned per threshold{suffix}\nRule: {RULES.get(rule, rule)}\n"
        "mean ± population std over n runs (band: ± std)"
    )
    return figure
