"""``sensitivity``: the test accuracy each Conv2D costs when it alone is pruned, over a grid.

Reads ``results.sensitivity`` (``psyk sensitivity``, ``psyk train --sensitivity MODE``). The
accuracy drop of a layer at a grid value is, per run, the unpruned accuracy minus the accuracy
with only that layer pruned, in percentage points (negative: the accuracy rose); a layer's
*sensitivity* is its mean drop over the grid, computed per run, then averaged over runs. Runs
are averaged only with like runs: the same dataset, model, mode and grid, and every other
setting equal (as in every report). Layers are aligned by position in model order and named
after the first run, as in the per-layer report.
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
    canonical,
    config_value,
    format_value,
    group_runs,
    group_stem,
    group_title,
    nothing_compared,
    runs_with,
    settings_text,
    summarize_matrix,
    varying_settings,
)
from psykedelic_cli.reports.report import Chart, Report
from psykedelic_cli.reports.tables import Cell, Table

KIND = "sensitivity"
SYMBOLS = {"threshold": "t", "contribution_threshold": "c", "rate": "r"}
"""How a grid's parameter is named in headers and axes."""

DROP = "accuracy_drop"
DEAD = "layer_dead"
RANKING = ("sensitivity", "max_drop", "layer_dead_at_last", "compression_at_last")
_LABELS = {
    "layer_index": "#", "layer": "Layer", "rank": "Rank", "measure": "",
    "sensitivity": "sensitivity", "max_drop": "max drop",
    "layer_dead_at_last": "layer dead at last", "compression_at_last": "compression at last",
}


@dataclass(frozen=True)
class SensitivityStats:
    """One group of like runs: statistics per layer (model order) and grid value."""

    mode: str
    parameter: str
    grid: list[float]
    layers: list[str]
    drop: list[list[Stat | None]]
    """Per layer, per grid value: the accuracy drop (a fraction of the test set)."""
    dead: list[list[Stat | None]]
    """Per layer, per grid value: the share of the layer's kernels dead."""
    compression: list[list[Stat | None]]
    """Per layer, per grid value: the model's compression ratio."""
    sensitivity: list[Stat | None]
    """Per layer: its mean drop over the grid."""
    max_drop: list[Stat | None]
    skipped: list[str | None]
    """Per layer: why the mode left it intact (first run), else None."""
    runs: int

    def ranked(self) -> list[int]:
        """Layer indices, most sensitive first (a layer with no value last; ties in model order)."""
        def key(index: int):
            stat = self.sensitivity[index]
            return (stat is None, -(stat.mean if stat is not None else 0.0), index)

        return sorted(range(len(self.layers)), key=key)


def _cube(runs: Sequence[dict], width: int, points: int, value) -> np.ndarray:
    """(runs × layers × grid values) of ``value(result, point)``, NaN where a run has no value."""
    cube = np.full((len(runs), width, points), np.nan)
    for r, run in enumerate(runs):
        result = run["results"][KIND]
        for i, layer in enumerate(result["layers"][:width]):
            for j, point in enumerate(layer.get("points", [])[:points]):
                got = value(result, layer, point)
                cube[r, i, j] = np.nan if got is None else got
    return cube


def _drop(result: dict, layer: dict, point: dict) -> float | None:
    base, accuracy = (result.get("baseline") or {}).get("accuracy"), point.get("accuracy")
    return None if base is None or accuracy is None else base - accuracy


def _dead(result: dict, layer: dict, point: dict) -> float | None:
    alive, total = point.get("layer_alive_kernels"), layer.get("total_kernels")
    return None if alive is None or not total else 1.0 - alive / total


def _compression(result: dict, layer: dict, point: dict) -> float | None:
    return point.get("compression_ratio")


def _per_value(cube: np.ndarray) -> list[list[Stat | None]]:
    runs, width, points = cube.shape
    flat = summarize_matrix(cube.reshape(runs, width * points))
    return [flat[i * points:(i + 1) * points] for i in range(width)]


def _over_grid(cube: np.ndarray, reduce) -> list[Stat | None]:
    """Per layer: ``reduce`` (NaN-ignoring) of each run's values over the grid, then mean ± std over runs."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a layer without values in a run: NaN, left out
        return summarize_matrix(reduce(cube, axis=2))


def aggregate_sensitivity(runs: Sequence[dict]) -> SensitivityStats:
    """Statistics of one group of like runs (one mode, one grid)."""
    results = [run["results"][KIND] for run in runs]
    first = results[0]
    longest = max((result["layers"] for result in results), key=len)
    width, points = len(longest), len(first["grid"])
    drop = _cube(runs, width, points, _drop)
    dead = _cube(runs, width, points, _dead)
    last = _cube(runs, width, points, _compression)
    return SensitivityStats(
        mode=first["mode"],
        parameter=first["parameter"],
        grid=[float(value) for value in first["grid"]],
        layers=[layer.get("layer") or f"layer {i + 1}" for i, layer in enumerate(longest)],
        drop=_per_value(drop),
        dead=_per_value(dead),
        compression=_per_value(last),
        sensitivity=_over_grid(drop, np.nanmean),
        max_drop=_over_grid(drop, np.nanmax),
        skipped=[layer.get("skipped") for layer in longest],
        runs=len(runs),
    )


def _key(run: dict) -> tuple:
    result = run["results"][KIND]
    return (result.get("mode"), result.get("parameter"), canonical(list(result.get("grid") or [])))


def sensitivity_report(runs: Sequence[dict], *, modes: Sequence[str] | None = None) -> Report:
    runs = runs_with(runs, KIND)
    if modes:
        runs = [run for run in runs if run["results"][KIND].get("mode") in modes]
        if not runs:
            raise nothing_compared(modes, "sensitivity results")
    # A saved model's sensitivity (psyk sensitivity) and a first stage's (psyk train --sensitivity) are never
    # averaged together; each source splits by the settings that vary among its own runs (the other source's
    # runs have none of a train run's settings).
    by_source = group_runs(runs, lambda run: (run.get("source"),))
    own = ("dataset", "model")
    varying = {name for members in by_source.values() for name in varying_settings(members, exclude=own)}
    splits = tuple(name for name in varying_settings(runs, exclude=own) if name in varying)
    if len(by_source) > 1:
        splits = ("source", *splits)

    def key(run: dict) -> tuple:
        mode, parameter, grid = _key(run)
        settings = [run.get("source") if name == "source" else config_value(run, name) for name in splits]
        return (config_value(run, "dataset"), config_value(run, "model"), mode, parameter, grid, *settings)

    tables, report_charts = [], []
    for values, members in group_runs(runs, key).items():
        stats = aggregate_sensitivity(members)
        dataset, model, mode, parameter, grid, *setting = values
        keys = {"dataset": dataset, "model": model, "mode": mode, "parameter": parameter,
                **dict(zip(splits, setting))}
        shown_settings = [(name, value) for name, value in zip(splits, setting) if value is not None]
        suffix = f"; {settings_text(*zip(*shown_settings))}" if shown_settings else ""
        title = f"{dataset}, {model}, {mode} over {SYMBOLS[parameter]} = {_grid_text(grid)}{suffix}"
        tables += _tables(stats, keys, title)
        chart_title = (f"{group_title(('dataset', 'model', *splits), (dataset, model, *setting))}\n"
                       f"{SYMBOLS[parameter]} = {_grid_text(grid)}")
        grid_stem = "_".join(format_value(value) for value in grid)
        stem = f"sensitivity_{group_stem(('dataset', 'model', *splits), (dataset, model, *setting))}_{mode}_{grid_stem}"
        report_charts += [
            Chart(f"{stem}_heatmap", partial(draw_heatmap, chart_title, stats)),
            Chart(f"{stem}_lines", partial(draw_lines, chart_title, stats)),
            Chart(f"{stem}_ranking", partial(draw_ranking, chart_title, stats)),
        ]
    return Report(
        name="sensitivity",
        record_fields=("dataset", "model", "mode", "parameter", *splits, "measure", "rank", "layer_index", "layer",
                       "value"),
        tables=tables,
        charts=report_charts,
    )


def _grid_text(grid: Sequence[float]) -> str:
    return ", ".join(format_value(value) for value in grid)


def _tables(stats: SensitivityStats, keys: dict, title: str) -> list[Table]:
    symbol = SYMBOLS[stats.parameter]
    rows = [(i + 1, name) for i, name in enumerate(stats.layers)]
    columns = [(value,) for value in stats.grid]
    labels = {**_LABELS, "value": symbol, **{value: f"{symbol}={format_value(value)}" for value in stats.grid}}
    skipped = [f"{name}: {why}" for name, why in zip(stats.layers, stats.skipped) if why]
    skipped_note = (f"Left intact by {stats.mode}: {'; '.join(skipped)}.",) if skipped else ()

    def grid_table(name: str, what: list[list[Stat | None]], heading: str, note: str) -> Table:
        return Table(
            title=f"{heading}, {title}",
            keys={**keys, "measure": name},
            row_fields=("layer_index", "layer"),
            column_fields=("value",),
            rows=rows,
            columns=columns,
            cells={(row, column): Cell(what[i][j]) for i, row in enumerate(rows) for j, column in enumerate(columns)},
            notes=(note, *skipped_note),
            labels=labels,
        )

    ranked = stats.ranked()
    ranking_rows = [(rank, index + 1, stats.layers[index]) for rank, index in enumerate(ranked, start=1)]
    per_layer = {
        "sensitivity": stats.sensitivity,
        "max_drop": stats.max_drop,
        "layer_dead_at_last": [values[-1] for values in stats.dead],
        "compression_at_last": [values[-1] for values in stats.compression],
    }
    ranking = Table(
        title=f"Layers ranked by sensitivity, {title}",
        keys=keys,
        row_fields=("rank", "layer_index", "layer"),
        column_fields=("measure",),
        rows=ranking_rows,
        columns=[(name,) for name in RANKING],
        cells={(row, (name,)): Cell(per_layer[name][index])
               for row, index in zip(ranking_rows, ranked) for name in RANKING},
        notes=(
            f"Sensitivity: a layer's mean accuracy drop over the grid ({symbol} = {_grid_text(stats.grid)}) "
            f"when {stats.mode} prunes it alone, per run, then over runs (percentage points); max drop: "
            f"its largest drop; at last (at {symbol} = {format_value(stats.grid[-1])}): the share of the layer's "
            "kernels dead and the model's compression ratio.",
            *skipped_note,
        ),
        labels=_LABELS,
    )
    return [
        ranking,
        grid_table(DROP, stats.drop, "Accuracy drop per layer",
                   f"Test accuracy of the unpruned model minus that with only this layer pruned by {stats.mode} "
                   f"at each {symbol} (percentage points; negative: the accuracy rose)."),
        grid_table(DEAD, stats.dead, "Kernels dead per layer",
                   f"Share of the layer's kernels dead when {stats.mode} prunes it alone at each {symbol}."),
    ]


def _means(rows: list[list[Stat | None]], scale: float = 100.0) -> np.ndarray:
    return np.array([charts.means_and_stds(row, scale)[0] for row in rows]).reshape(len(rows), -1)


def _grid_labels(stats: SensitivityStats) -> list[str]:
    return [format_value(value) for value in stats.grid]


def draw_heatmap(title: str, stats: SensitivityStats):
    """Mean accuracy drop: grid values (rows) × layers in model order (columns), 0 at the centre of the scale."""
    from matplotlib.colors import CenteredNorm

    matrix = _means(stats.drop).T
    finite = np.abs(matrix[np.isfinite(matrix)])
    # Symmetric about 0, so a small gain stays as pale as an equally small loss.
    half_range = max(float(finite.max()) if finite.size else 0.0, 1e-9)
    figure, ax = charts.figure(charts.PAPER_WIDTH, 2.2 + 0.26 * len(stats.grid))
    from matplotlib import colormaps

    image = ax.imshow(
        np.ma.masked_invalid(matrix), aspect="auto", cmap=colormaps["RdBu_r"].with_extremes(bad="#e0e0e0"),
        interpolation="nearest", norm=CenteredNorm(0.0, half_range),
    )
    symbol = SYMBOLS[stats.parameter]
    ax.set_yticks(range(len(stats.grid)), [f"{symbol}={label}" for label in _grid_labels(stats)])
    step = max(1, math.ceil(len(stats.layers) / 24))
    ax.set_xticks(range(0, len(stats.layers), step), [str(i + 1) for i in range(0, len(stats.layers), step)])
    ax.set_xlabel("conv layer (model order; grey: left intact by the mode)")
    ax.grid(False)
    figure.colorbar(image, ax=ax, label="accuracy drop (pp)", fraction=0.04, pad=0.01)
    figure.suptitle(f"Accuracy drop with one layer pruned by {stats.mode}\n{title}\n"
                    f"mean over n = {stats.runs} runs (red: accuracy lost, blue: gained); layer names in the tables")
    return figure


def draw_lines(title: str, stats: SensitivityStats):
    """Accuracy drop over the grid, one line per layer (coloured by depth) with a ± std band."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    figure, ax = charts.figure(charts.PAPER_WIDTH, 4.2)
    colours = colormaps["viridis"]
    norm = Normalize(1, max(len(stats.layers), 2))
    x = np.array(stats.grid)
    drawn = 0
    for index, row in enumerate(stats.drop):
        mean, std = charts.means_and_stds(row, 100)
        if not np.isfinite(mean).any():
            continue
        colour = colours(norm(index + 1))
        ax.plot(x, mean, color=colour, linewidth=1.1, marker="o", markersize=2.5)
        ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.12, linewidth=0)
        drawn += 1
    if not drawn:
        charts.no_data(ax, "no layer was pruned")
    if stats.parameter != "rate" and x.size and x.min() > 0 and x.max() / x.min() >= 20:
        ax.set_xscale("log")
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_xlabel(f"{stats.parameter.replace('_', ' ')} {SYMBOLS[stats.parameter]}")
    ax.set_ylabel("accuracy drop (pp)")
    from matplotlib.ticker import MaxNLocator

    bar = figure.colorbar(ScalarMappable(norm=norm, cmap=colours), ax=ax, label="conv layer (model order)",
                          fraction=0.04, pad=0.01)
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    figure.suptitle(f"Accuracy drop per layer pruned alone by {stats.mode}\n{title}\n"
                    f"mean ± population std over n = {stats.runs} runs (band: ± std)")
    return figure


def draw_ranking(title: str, stats: SensitivityStats):
    """Layers sorted by sensitivity (mean drop over the grid), bars with ± std error bars."""
    from psykedelic_cli.reports.palette import mode_style

    ranked = [index for index in stats.ranked() if stats.sensitivity[index] is not None]
    figure, ax = charts.figure(charts.PAPER_WIDTH, 4.0)
    if not ranked:
        charts.no_data(ax, "no layer was pruned")
    else:
        style = mode_style(stats.mode)
        charts.bars(ax, [stats.sensitivity[i] for i in ranked], [style] * len(ranked), width=0.8)
        ax.set_xticks(range(len(ranked)), [str(i + 1) for i in ranked], **charts.label_rotation(
            [str(i + 1) for i in ranked]))
        ax.set_xlim(-0.6, len(ranked) - 0.4)
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.grid(axis="x", visible=False)
    ax.set_xlabel("conv layer (model order), most sensitive first")
    ax.set_ylabel("mean accuracy drop over the grid (pp)")
    figure.suptitle(f"Layers ranked by sensitivity to {stats.mode}\n{title}\n"
                    f"mean ± population std over n = {stats.runs} runs (error bars: std)")
    return figure
