"""``performance``: compression ratio, score and accuracy per mode, end of the first stage.

Tables: one per (threshold, category); rows are modes, columns (dataset, model,
init mode); the best mean of each column is marked (the unpruned "None" row can
win accuracy only — it compresses nothing). Charts: per (dataset, model, init,
threshold) three panels of bars with ± std error bars.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

from psykedelic_cli.reports import charts
from psykedelic_cli.reports.aggregate import (
    Stat,
    format_value,
    group_by_config,
    group_stem,
    group_title,
    natural_key,
    nothing_compared,
    runs_with,
    settings_text,
    summarize,
    varying_settings,
)
from psykedelic_cli.reports.palette import mode_sort_key, mode_style
from psykedelic_cli.reports.report import Chart, Report
from psykedelic_cli.reports.tables import Table, mark_best
from psykedelic_cli.store.schema import BASELINE

CATEGORIES = ("compression_ratio", "score", "accuracy")
CATEGORY_LABELS = {"compression_ratio": "Compression ratio", "score": "Compression score", "accuracy": "Accuracy"}
CELL_FIELDS = ("dataset", "model", "init_mode", "threshold")

PerformanceStats = dict[tuple, dict[str, dict[str, Stat]]]
"""group key (CELL_FIELDS + split settings) → category → mode → Stat."""


def aggregate_performance(
    runs: Sequence[dict], fields: Sequence[str], modes: Sequence[str] | None = None
) -> PerformanceStats:
    """Mean ± std of every category for every mode, per group of runs sharing ``fields``."""
    aggregated: PerformanceStats = {}
    for key, members in group_by_config(runs, fields).items():
        rows = [run["results"]["performance"] for run in members]
        present = sorted({mode for row in rows for mode in row if modes is None or mode in modes}, key=mode_sort_key)
        if not present:
            continue
        aggregated[key] = {
            category: {
                mode: stat
                for mode in present
                if (stat := summarize((row.get(mode) or {}).get(category) for row in rows))
            }
            for category in CATEGORIES
        }
    if not aggregated:
        raise nothing_compared(modes, "performance results")
    return aggregated


def performance_report(runs: Sequence[dict], *, modes: Sequence[str] | None = None) -> Report:
    """The performance report of ``runs`` (those without performance results are ignored)."""
    runs = runs_with(runs, "performance")
    splits = varying_settings(runs, exclude=CELL_FIELDS)
    fields = (*CELL_FIELDS, *splits)
    aggregated = aggregate_performance(runs, fields, modes)
    return Report(
        name="performance",
        record_fields=("dataset", "model", "init_mode", "threshold", "category", "mode", *splits),
        tables=performance_tables(aggregated, splits),
        charts=[
            Chart(f"performance_{group_stem(fields, key)}", partial(draw_performance, key, fields, stats))
            for key, stats in aggregated.items()
            if any(stats.values())  # every value missing: nothing to draw
        ],
    )


def performance_tables(aggregated: PerformanceStats, splits: Sequence[str]) -> list[Table]:
    by_setting: dict[tuple, dict[tuple, dict]] = {}
    for key, stats in aggregated.items():
        # key = dataset, model, init_mode, threshold, *splits: tables per (threshold, splits)
        by_setting.setdefault(key[3:], {})[key[:3]] = stats
    tables = []
    for setting, columns_stats in sorted(by_setting.items(), key=lambda item: natural_key(item[0])):
        threshold, split_values = setting[0], setting[1:]
        columns = list(columns_stats)
        for category in CATEGORIES:
            modes = sorted({m for stats in columns_stats.values() for m in stats[category]}, key=mode_sort_key)
            if category != "accuracy":
                modes = [m for m in modes if m != BASELINE]
            if not modes:  # only the baseline was asked for: it has no compression to show
                continue
            rows = [(m,) for m in modes]
            stats = {((m,), column): columns_stats[column][category].get(m) for m in modes for column in columns}
            title = f"{CATEGORY_LABELS[category]}, threshold {format_value(threshold)}"
            if split_values:
                title += f" ({settings_text(splits, split_values)})"
            tables.append(
                Table(
                    title=title,
                    keys={"threshold": threshold, "category": category, **dict(zip(splits, split_values))},
                    row_fields=("mode",),
                    column_fields=("dataset", "model", "init_mode"),
                    rows=rows,
                    columns=columns,
                    cells=mark_best(
                        stats, rows, columns, along="column",
                        eligible_rows=rows if category == "accuracy" else [r for r in rows if r != (BASELINE,)],
                    ),
                    best_means="the best of each column"
                    + ("" if category == "accuracy" else " (the unpruned None baseline excluded)"),
                    labels={"init_mode": "init", "mode": "Mode"},
                )
            )
    return tables


_SIDE_BY_SIDE_MODES = 10
"""More modes than this get the three panels stacked, each the full width."""


def draw_performance(key: tuple, fields: Sequence[str], stats: dict[str, dict[str, Stat]]):
    """Three panels (compression ratio, score, accuracy) of bars per mode with ± std error bars."""
    present = sorted({m for category in stats.values() for m in category}, key=mode_sort_key)
    modes = [m for m in present if m != BASELINE] or present
    label_height = 0.06 * max(len(m) for m in modes)
    if len(modes) <= _SIDE_BY_SIDE_MODES:
        figure, axes = charts.figure(charts.PAPER_WIDTH, 2.9 + label_height, ncols=3, sharex=True)
    else:
        figure, axes = charts.figure(charts.PAPER_WIDTH, 6.0 + label_height, nrows=3, sharex=True)
    styles = [mode_style(m) for m in modes]
    for ax, category in zip(axes, CATEGORIES):
        charts.bars(ax, [stats[category].get(m) for m in modes], styles)
        ax.set_title(CATEGORY_LABELS[category])
        ax.set_ylabel(f"{CATEGORY_LABELS[category].lower()} (%)")
        ax.set_xticks(range(len(modes)), modes, **charts.label_rotation(modes))
        ax.set_xlim(-0.6, len(modes) - 0.4)
        ax.grid(axis="x", visible=False)
    baseline = stats["accuracy"].get(BASELINE)
    if baseline is not None:
        axes[2].axhline(
            baseline.mean * 100, color="black", linestyle="--", linewidth=1,
            label=f"None (unpruned): {baseline.mean * 100:.1f}%",
        )
        figure.legend(loc="outside lower right", frameon=False)
    n = max(stat.n for category in stats.values() for stat in category.values())
    figure.suptitle(
        f"Performance per mode — {group_title(fields, key)}\nmean ± population std over n = {n} runs (error bars: std)"
    )
    return figure
