"""``history``: accuracy, compression ratio and score per mode over the epochs of the first stage.

A run's history samples the comparison every ``history_interval`` epochs; runs are
aligned by epoch number, and runs with different intervals are never averaged
together. The winner of an epoch is the mode with the best mean (the unpruned
"None" baseline competes for accuracy only, as in the performance report).
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

from psykedelic_cli.reports import charts
from psykedelic_cli.reports.aggregate import (
    Stat,
    group_by_config,
    group_stem,
    group_title,
    nothing_compared,
    runs_with,
    settings_text,
    summarize,
    varying_settings,
)
from psykedelic_cli.reports.palette import mode_sort_key, mode_style
from psykedelic_cli.reports.performance import CATEGORIES, CATEGORY_LABELS
from psykedelic_cli.reports.report import Chart, Report
from psykedelic_cli.reports.tables import Table, mark_best
from psykedelic_cli.store.schema import BASELINE

HistoryStats = dict[str, dict[str, dict[int, Stat]]]
"""category → mode → epoch → Stat."""


def aggregate_history(runs: Sequence[dict], modes: Sequence[str] | None = None) -> HistoryStats:
    """Mean ± std per category, mode and epoch over ``runs`` (aligned by epoch number)."""
    values: dict[str, dict[str, dict[int, list]]] = {c: {} for c in CATEGORIES}
    for run in runs:
        for point in run["results"]["history"]:
            for mode, row in point.get("performance", {}).items():
                if modes is not None and mode not in modes:
                    continue
                for category in CATEGORIES:
                    values[category].setdefault(mode, {}).setdefault(point["epoch"], []).append(row.get(category))
    return {
        category: {
            mode: {epoch: stat for epoch in sorted(by_epoch) if (stat := summarize(by_epoch[epoch]))}
            for mode, by_epoch in sorted(per_mode.items(), key=lambda item: mode_sort_key(item[0]))
        }
        for category, per_mode in values.items()
    }


def winners(stats: HistoryStats, category: str = "score") -> dict[int, str]:
    """The best mode of every epoch by mean ``category`` (None competes for accuracy only)."""
    best: dict[int, tuple[float, str]] = {}
    for mode, by_epoch in stats[category].items():
        if mode == BASELINE and category != "accuracy":
            continue
        for epoch, stat in by_epoch.items():
            if epoch not in best or stat.mean > best[epoch][0]:
                best[epoch] = (stat.mean, mode)
    return {epoch: mode for epoch, (_, mode) in sorted(best.items())}


def history_report(runs: Sequence[dict], *, modes: Sequence[str] | None = None) -> Report:
    runs = runs_with(runs, "history")
    splits = varying_settings(runs, exclude=("dataset", "model"), first_stage=False)
    fields = ("dataset", "model", *splits)
    tables, report_charts = [], []
    for key, members in group_by_config(runs, fields).items():
        stats = aggregate_history(members, modes)
        if not any(stats.values()):
            continue
        dataset, model, *setting = key
        suffix = f" ({settings_text(splits, setting)})" if setting else ""
        tables += [
            _table(stats, category, dict(zip(fields, key)), f"{dataset}, {model}{suffix}")
            for category in CATEGORIES
            if category == "accuracy" or set(stats[category]) - {BASELINE}  # the baseline compresses nothing
        ]
        report_charts.append(
            Chart(
                f"history_{group_stem(fields, key)}",
                partial(draw_history, group_title(fields, key), stats, len(members)),
            )
        )
    if not tables:
        raise nothing_compared(modes, "a history")
    return Report(
        name="history",
        record_fields=("dataset", "model", "category", "epoch", "mode", *splits),
        tables=tables,
        charts=report_charts,
    )


def _table(stats: HistoryStats, category: str, keys: dict, title: str) -> Table:
    per_mode = stats[category]
    modes = [m for m in per_mode if category == "accuracy" or m != BASELINE]
    rows = [(epoch,) for epoch in sorted({e for m in modes for e in per_mode[m]})]
    columns = [(m,) for m in modes]
    cells = {((e,), (m,)): per_mode[m].get(e) for m in modes for (e,) in rows}
    return Table(
        title=f"{CATEGORY_LABELS[category]} over epochs, {title}",
        keys={**keys, "category": category},
        row_fields=("epoch",),
        column_fields=("mode",),
        rows=rows,
        columns=columns,
        cells=mark_best(cells, rows, columns, along="row"),
        best_means="the winner of each epoch (best mean)",
        labels={"epoch": "Epoch", "mode": "Mode"},
    )


def draw_history(title: str, stats: HistoryStats, runs: int):
    """Accuracy, compression ratio and score over epochs (mean line, ± std band); the score
    winner of every epoch ringed."""
    from matplotlib.ticker import MaxNLocator

    entries = len(stats["accuracy"]) + 1  # the modes and the winner ring
    figure, axes = charts.figure(charts.PAPER_WIDTH, 6.4 + charts.legend_height(entries), nrows=3, sharex=True)
    for ax, category in zip(axes, ("accuracy", "compression_ratio", "score")):
        for mode, by_epoch in stats[category].items():
            if mode == BASELINE and category != "accuracy":
                continue
            epochs = sorted(by_epoch)
            charts.band(ax, epochs, [by_epoch[e] for e in epochs], mode_style(mode), mode, marker=True)
        ax.set_ylabel(f"{CATEGORY_LABELS[category].lower()} (%)")
    best = winners(stats)
    axes[2].scatter(
        list(best), [stats["score"][mode][epoch].mean * 100 for epoch, mode in best.items()],
        s=90, facecolors="none", edgecolors="black", linewidths=1.2, zorder=5, label="winner of the epoch",
    )
    handles, labels = axes[0].get_legend_handles_labels()
    ring, ring_label = axes[2].get_legend_handles_labels()
    charts.legend(axes[0], handles + ring[-1:], labels + ring_label[-1:], title="mode")
    axes[2].set_xlabel("epoch")
    axes[2].xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(
        f"Compression over the first stage — {title}\n"
        f"mean ± population std over n = {runs} runs (band: ± std)\nringed: the winner of each epoch (best mean score)"
    )
    return figure
