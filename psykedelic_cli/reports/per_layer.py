"""``per-layer``: active vs total parameters of every Conv2D layer, per compared mode.

Layers are aligned by position in model order (Keras layer names differ between
sessions; the position does not for one model) and named after the first run.
Active ratio = active / total parameters of the layer, computed per run, then averaged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Sequence

import numpy as np

from psykedelic_cli.reports import charts
from psykedelic_cli.reports.aggregate import (
    Stat,
    group_by_config,
    group_stem,
    group_title,
    nothing_compared,
    ragged_matrix,
    runs_with,
    settings_text,
    summarize_matrix,
    varying_settings,
)
from psykedelic_cli.reports.palette import mode_sort_key, mode_style
from psykedelic_cli.reports.report import Chart, Report
from psykedelic_cli.reports.tables import Cell, Table
from psykedelic_cli.store.schema import BASELINE

TOTAL = "total_params"
ACTIVE = "active_params"
RATIO = "active_ratio"


@dataclass(frozen=True)
class LayerStats:
    """Per-layer statistics of one group of runs (lists in model order)."""

    layers: list[str]
    total: list[Stat | None]
    active: dict[str, list[Stat | None]]
    ratio: dict[str, list[Stat | None]]
    runs: int


def _matrix(lists: Sequence[Sequence[dict]], field: str, width: int) -> np.ndarray:
    """(runs × layers) values of ``field`` from per-layer lists, NaN where missing."""
    return ragged_matrix([[layer.get(field) for layer in layers] for layers in lists], width)


def aggregate_per_layer(runs: Sequence[dict], modes: Sequence[str] | None = None) -> LayerStats | None:
    """Stats per layer and mode of one group of runs; ``None`` when no run compared any of ``modes``."""
    per_mode = [run["results"]["pruning_per_layer"] for run in runs]
    present = sorted({m for lists in per_mode for m in lists if modes is None or m in modes}, key=mode_sort_key)
    if not present:
        return None
    longest = max((layers for lists in per_mode for layers in lists.values()), key=len)
    width = len(longest)
    names = [layer.get("layer") or f"layer {i + 1}" for i, layer in enumerate(longest)]
    active, ratio = {}, {}
    for mode in present:
        lists = [lists[mode] for lists in per_mode if mode in lists]
        active_matrix = _matrix(lists, ACTIVE, width)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio_matrix = active_matrix / _matrix(lists, TOTAL, width)
        active[mode] = summarize_matrix(active_matrix)
        ratio[mode] = summarize_matrix(ratio_matrix)
    # Every list of a run describes the same layers, so the first per run gives the totals.
    firsts = [next(iter(lists.values())) for lists in per_mode if lists]
    return LayerStats(names, summarize_matrix(_matrix(firsts, TOTAL, width)), active, ratio, len(runs))


def per_layer_report(runs: Sequence[dict], *, modes: Sequence[str] | None = None) -> Report:
    runs = runs_with(runs, "pruning_per_layer")
    splits = varying_settings(runs, exclude=("dataset", "model"))
    fields = ("dataset", "model", *splits)
    tables, report_charts = [], []
    for key, members in group_by_config(runs, fields).items():
        stats = aggregate_per_layer(members, modes)
        if stats is None:
            continue
        dataset, model, *setting = key
        suffix = f" ({settings_text(splits, setting)})" if setting else ""
        keys = dict(zip(fields, key))
        tables += _tables(stats, keys, f"{dataset}, {model}{suffix}")
        title = group_title(fields, key)
        stem = group_stem(fields, key)
        report_charts += [
            Chart(f"per_layer_{stem}_params", partial(draw_parameters, title, stats)),
            Chart(f"per_layer_{stem}_ratio", partial(draw_ratios, title, stats)),
            Chart(f"per_layer_{stem}_overview", partial(draw_overview, title, stats)),
        ]
    if not tables:
        raise nothing_compared(modes, "per-layer results")
    return Report(
        name="per_layer",
        record_fields=("dataset", "model", "layer_index", "layer", "measure", "mode", *splits),
        tables=tables,
        charts=report_charts,
    )


def _tables(stats: LayerStats, keys: dict, title: str) -> list[Table]:
    rows = [(i + 1, name) for i, name in enumerate(stats.layers)]
    modes = list(stats.active)
    labels = {"layer_index": "#", "layer": "Layer", TOTAL: "total", ACTIVE: "active", "measure": "", "mode": "Mode"}
    parameter_cells = {(row, (TOTAL, None)): Cell(stats.total[i]) for i, row in enumerate(rows)}
    parameter_cells.update({(row, (ACTIVE, m)): Cell(stats.active[m][i]) for m in modes for i, row in enumerate(rows)})
    return [
        Table(
            title=f"Parameters per layer, {title}",
            keys=keys,
            row_fields=("layer_index", "layer"),
            column_fields=("measure", "mode"),
            rows=rows,
            columns=[(TOTAL, None)] + [(ACTIVE, m) for m in modes],
            cells=parameter_cells,
            scale=1,
            digits=0,
            notes=("Total and active (alive-kernel) parameters of each Conv2D layer per mode.",),
            labels=labels,
        ),
        Table(
            title=f"Active ratio per layer, {title}",
            keys={**keys, "measure": RATIO},
            row_fields=("layer_index", "layer"),
            column_fields=("mode",),
            rows=rows,
            columns=[(m,) for m in modes],
            cells={(row, (m,)): Cell(stats.ratio[m][i]) for m in modes for i, row in enumerate(rows)},
            notes=("Active / total parameters of each Conv2D layer per mode.",),
            labels=labels,
        ),
    ]


def _pruning_modes(stats: LayerStats) -> list[str]:
    return [m for m in stats.active if m != BASELINE] or list(stats.active)


def _layer_axis(ax, stats: LayerStats, ticks: int = 12) -> None:
    step = max(1, math.ceil(len(stats.layers) / ticks))
    ax.set_xticks(range(1, len(stats.layers) + 1, step))
    ax.set_xlim(0.3, len(stats.layers) + 0.7)
    ax.grid(axis="x", visible=False)


def draw_parameters(title: str, stats: LayerStats):
    """Small multiples, one per mode: total parameters (grey) behind active parameters (± std).

    The panels share their scales by construction (the same limits and ticks on each)
    rather than through matplotlib's shared axes, whose bookkeeping grows with the
    square of the panel count; the outer panels carry the tick labels.
    """
    from matplotlib.ticker import MaxNLocator

    modes = _pruning_modes(stats)
    ncols = min(3 if len(modes) <= 12 else 4, len(modes))
    nrows = math.ceil(len(modes) / ncols)
    figure = charts.blank_figure(charts.PAPER_WIDTH, 1.0 + 1.75 * nrows)
    grid = figure.add_gridspec(nrows, ncols)
    x = np.arange(1, len(stats.layers) + 1)
    total, _ = charts.means_and_stds(stats.total, 1e-3)
    active = {
        mode: [None if s is None else Stat(s.mean / 1e3, s.std / 1e3, s.n) for s in stats.active[mode]]
        for mode in modes
    }
    highest = max(
        [np.nanmax(total, initial=0.0)]
        + [np.nanmax(sum(charts.means_and_stds(a)), initial=0.0) for a in active.values()]
    )
    top = 1.05 * highest if highest > 0 else 1.0
    y_ticks = [t for t in MaxNLocator(nbins=4).tick_values(0, top) if 0 <= t <= top]
    for index, mode in enumerate(modes):
        row, column = divmod(index, ncols)
        ax = figure.add_subplot(grid[row, column])
        charts.rectangles(ax, x, np.nan_to_num(total), 0.85, ["#d9d9d9"] * len(x))
        charts.bars(ax, active[mode], [mode_style(mode)] * len(x), scale=1, positions=x, width=0.85)
        _layer_axis(ax, stats, ticks=6)
        ax.set_ylim(0, top)
        lowest_in_column = index + ncols >= len(modes)
        if not lowest_in_column:
            ax.set_xticklabels([])
        ax.set_yticks(y_ticks, [f"{t:g}" for t in y_ticks] if column == 0 else [])
        ax.set_title(mode, fontsize=8, color=mode_style(mode).color)
        if column == 0:
            ax.set_ylabel("parameters (k)")
        if lowest_in_column:
            ax.set_xlabel("conv layer (model order)")
    figure.suptitle(
        f"Active (colour, ± std) vs total (grey) parameters per layer — {title}\n"
        f"mean ± population std over n = {stats.runs} runs; layer names in the per_layer table"
    )
    return figure


def draw_ratios(title: str, stats: LayerStats):
    """Active ratio per layer and mode: markers with ± std error bars, modes side by side per layer."""
    modes = _pruning_modes(stats)
    figure, ax = charts.figure(charts.PAPER_WIDTH, 3.4 + charts.legend_height(len(modes)))
    offsets = np.linspace(-0.3, 0.3, len(modes)) if len(modes) > 1 else [0.0]
    x = np.arange(1, len(stats.layers) + 1)
    for offset, mode in zip(offsets, modes):
        style = mode_style(mode)
        mean, std = charts.means_and_stds(stats.ratio[mode], 100)
        ax.errorbar(
            x + offset, mean, yerr=std, fmt=style.marker, color=style.color, markersize=3, elinewidth=0.7, capsize=0,
            label=mode,
        )
    _layer_axis(ax, stats)
    ax.set_ylim(-2, 102)
    ax.set_xlabel("conv layer (model order)")
    ax.set_ylabel("active parameters (% of layer)")
    charts.legend(ax, *ax.get_legend_handles_labels(), title="mode")
    figure.suptitle(
        f"Active ratio per layer — {title}\nmean ± population std over n = {stats.runs} runs (error bars: std)"
    )
    return figure


def draw_overview(title: str, stats: LayerStats):
    """Heat map of the mean active ratio: modes × layers."""
    modes = list(stats.ratio)
    matrix = np.array([charts.means_and_stds(stats.ratio[m], 100)[0] for m in modes])
    figure, ax = charts.figure(charts.PAPER_WIDTH, 1.3 + 0.24 * len(modes))
    image = ax.imshow(matrix, aspect="auto", cmap="viridis", vmin=0, vmax=100, interpolation="nearest")
    ax.set_yticks(range(len(modes)), modes)
    step = max(1, math.ceil(len(stats.layers) / 16))
    ax.set_xticks(range(0, len(stats.layers), step), [str(i + 1) for i in range(0, len(stats.layers), step)])
    ax.set_xlabel("conv layer (model order)")
    ax.grid(False)
    figure.colorbar(image, ax=ax, label="active parameters (%)", fraction=0.04, pad=0.01)
    figure.suptitle(f"Active ratio per layer and mode — {title} (mean over n = {stats.runs} runs)")
    return figure
