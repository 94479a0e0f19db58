"""``set-analysis``: which combinations of criteria prune the same kernels.

A run stores the share of all kernels pruned by exactly each set of criteria
(``results.set_analysis.shares``; a set absent from a run is a share of 0 there).
Runs comparing different criteria are never averaged together: "pruned by det
only" means something else when min_eig_real was not compared. Venn regions are
sums of those shares, computed per run and then averaged.
"""

from __future__ import annotations

from functools import partial
from itertools import product
from typing import Sequence

import numpy as np

from psykedelic_cli.reports import charts
from psykedelic_cli.reports.aggregate import (
    Stat,
    config_value,
    group_runs,
    group_stem,
    group_title,
    runs_with,
    settings_text,
    summarize_matrix,
    varying_settings,
)
from psykedelic_cli.reports.palette import CRITERION_COLORS, UNKNOWN_COLOR, criterion_letter
from psykedelic_cli.reports.report import Chart, Report
from psykedelic_cli.reports.tables import Cell, Table

NONE_CODE = "∅"
VENN_SETS = (
    ("min_eig", "min_eig_real"), ("spectral_radius", "spectral_radius_real"), ("min_eig", "weight", "spectral_radius")
)
NOTHING_PRUNED = "No criterion pruned any kernel."
MAX_BARS = 30
"""Bars beyond this many (the smallest shares) are summed into one "other" bar."""
_IRRELEVANT = ("dataset", "model", "contribution_threshold", "rate")
_SEVERAL_COLOR = "#9e9e9e"


def combination_code(combination: str) -> str:
    """``"det+min_eig"`` → ``"ac"`` (the fixed letters of palette.CRITERION_LETTERS); "" → ∅."""
    return "".join(criterion_letter(c) for c in combination.split("+")) if combination else NONE_CODE


def share_matrix(runs: Sequence[dict]) -> tuple[list[str], np.ndarray]:
    """Combinations (largest mean share first) and the (runs × combinations) share matrix."""
    shares = [run["results"]["set_analysis"].get("shares") or {} for run in runs]
    combinations = sorted({c for run_shares in shares for c in run_shares})
    matrix = np.array([[run_shares.get(c, 0.0) for c in combinations] for run_shares in shares], dtype=float)
    order = np.argsort(-matrix.mean(axis=0), kind="stable")
    return [combinations[i] for i in order], matrix[:, order]


def venn_regions(
    combinations: Sequence[str], matrix: np.ndarray, sets: Sequence[str]
) -> dict[tuple[bool, ...], list[Stat | None]]:
    """Per region (membership in each of ``sets``) the Stat of its share: the sum of the shares
    of every combination with exactly that membership, per run."""
    members = [set(c.split("+")) if c else set() for c in combinations]
    regions = list(product((False, True), repeat=len(sets)))
    columns = np.array(
        [[all((s in m) == inside for s, inside in zip(sets, region)) for m in members] for region in regions],
        dtype=float,
    )
    return dict(zip(regions, summarize_matrix(matrix @ columns.T)))


def set_analysis_report(runs: Sequence[dict]) -> Report:
    runs = runs_with(runs, "set_analysis")
    splits = varying_settings(runs, exclude=_IRRELEVANT)

    def key(run: dict) -> tuple:
        criteria = tuple(run["results"]["set_analysis"].get("criteria") or ())
        return (
            *(config_value(run, s) for s in splits), criteria, config_value(run, "dataset"), config_value(run, "model")
        )

    groups = group_runs(runs, key)
    criteria_vary = len({k[len(splits)] for k in groups}) > 1
    tables: dict[tuple, Table] = {}
    report_charts = []
    for (*setting, criteria, dataset, model), members in groups.items():
        combinations, matrix = share_matrix(members)
        stats = dict(zip(combinations, summarize_matrix(matrix)))
        table_key = (*setting, criteria, dataset)
        if table_key not in tables:
            tables[table_key] = _empty_table(splits, setting, criteria, dataset, criteria_vary)
        table = tables[table_key]
        table.columns.append((model,))
        for combination, stat in stats.items():
            row = (combination_code(combination), combination)
            if row not in table.rows:
                table.rows.append(row)
            table.cells[(row, (model,))] = Cell(stat)
        title = group_title(("dataset", "model", *splits), (dataset, model, *setting))
        stem = group_stem(
            ("dataset", "model", *splits, *(("criteria",) if criteria_vary else ())),
            (dataset, model, *setting, criteria),
        )
        if not combinations:  # no shares recorded: nothing to draw
            continue
        report_charts.append(Chart(f"set_analysis_{stem}", partial(draw_shares, title, criteria, combinations, matrix)))
        if any(set(venn) <= set(criteria) for venn in VENN_SETS):
            report_charts.append(
                Chart(f"set_analysis_venn_{stem}", partial(draw_venns, title, criteria, combinations, matrix))
            )
    for table in tables.values():
        if not any(cell.stat and cell.stat.mean > 0 for (row, _), cell in table.cells.items() if row[1]):
            table.notes = (*table.notes, NOTHING_PRUNED)
        table.rows.sort(
            key=lambda row: -max(
                (table.cell(row, col).stat.mean for col in table.columns if table.cell(row, col).stat), default=0
            )
        )
    fields = ("dataset", "model", "code", "combination", *splits) + (("criteria",) if criteria_vary else ())
    return Report(name="set_analysis", record_fields=fields, tables=list(tables.values()), charts=report_charts)


def _empty_table(
    splits: Sequence[str], setting: Sequence[object], criteria: tuple, dataset: str, criteria_vary: bool
) -> Table:
    """The table of one dataset; ``criteria_vary``: other runs compared other criteria, so say which."""
    keys = {"dataset": dataset, **dict(zip(splits, setting))}
    extra = [settings_text(splits, setting)] if setting else []
    if criteria_vary:
        keys["criteria"] = criteria
        extra.append(f"criteria {', '.join(criteria)}")
    title = f"Kernels pruned per combination of criteria, {dataset}" + (f" ({'; '.join(extra)})" if extra else "")
    legend = ", ".join(f"{criterion_letter(c)} = {c}" for c in criteria)
    return Table(
        title=title,
        keys=keys,
        row_fields=("code", "combination"),
        column_fields=("model",),
        rows=[],
        columns=[],
        cells={},
        notes=(f"Share of all kernels pruned by exactly this set of criteria{': ' + legend if legend else ''}.",),
        labels={"code": "Code", "combination": "Criteria", "": "pruned by none"},
    )


def draw_shares(title: str, criteria: Sequence[str], combinations: Sequence[str], matrix: np.ndarray):
    """Bars of the mean share per combination (± std), largest first; letter legend on the right.

    The kernels no criterion prunes are usually most of them; as a bar they would flatten
    every other one, so their share is stated in the title instead.
    """
    from matplotlib.patches import Patch

    pruned = [i for i, c in enumerate(combinations) if c]
    combinations = [combinations[i] for i in pruned]
    none = matrix.sum(axis=1) - matrix[:, pruned].sum(axis=1)
    matrix = matrix[:, pruned]
    labels = [combination_code(c) for c in combinations]
    colors = [_combination_color(c) for c in combinations]
    if len(combinations) > MAX_BARS:
        labels = labels[: MAX_BARS - 1] + [f"other ({len(combinations) - MAX_BARS + 1})"]
        matrix = np.column_stack([matrix[:, : MAX_BARS - 1], matrix[:, MAX_BARS - 1 :].sum(axis=1)])
        colors = colors[: MAX_BARS - 1] + [UNKNOWN_COLOR]
    figure, ax = charts.figure(charts.PAPER_WIDTH, 3.4)
    mean = matrix.mean(axis=0) * 100
    charts.rectangles(ax, np.arange(len(labels)), mean, 0.75, colors)
    ax.errorbar(
        range(len(labels)), mean, yerr=matrix.std(axis=0) * 100, fmt="none", ecolor="black", elinewidth=0.8, capsize=2
    )
    if labels:
        ax.set_xticks(range(len(labels)), labels, **charts.label_rotation(labels))
        ax.set_xlim(-0.6, len(labels) - 0.4)
    else:
        ax.set(xticks=[], ylim=(0, 1))
        charts.no_data(ax, NOTHING_PRUNED)
    ax.set_ylabel("share of all kernels (%)")
    ax.set_xlabel("combination of criteria that prune exactly these kernels")
    ax.grid(axis="x", visible=False)
    handles = [
        Patch(color=CRITERION_COLORS.get(c, UNKNOWN_COLOR), label=f"{criterion_letter(c)} = {c}") for c in criteria
    ]
    handles.append(Patch(color=_SEVERAL_COLOR, label="several criteria"))
    if len(labels) < len(combinations):
        handles.append(Patch(color=UNKNOWN_COLOR, label="other = the smaller\ncombinations, summed"))
    charts.legend(ax, handles, [h.get_label() for h in handles], title="codes")
    figure.suptitle(
        f"Kernels per combination of pruning criteria — {title}\n"
        f"pruned by none of them (not drawn): {none.mean() * 100:.2f}% ± {none.std() * 100:.2f}\n"
        f"mean ± population std over n = {len(none)} runs (error bars: std)"
    )
    return figure


def _combination_color(combination: str) -> str:
    # A kernel pruned by one criterion alone gets that criterion's colour; overlaps are neutral.
    names = combination.split("+")
    return CRITERION_COLORS.get(names[0], UNKNOWN_COLOR) if len(names) == 1 else _SEVERAL_COLOR


def draw_venns(title: str, criteria: Sequence[str], combinations: Sequence[str], matrix: np.ndarray):
    """Venn diagrams of ``VENN_SETS`` (those whose criteria were compared), regions labelled mean ± std."""
    from matplotlib_venn import venn2, venn3
    from matplotlib_venn.layout.venn2 import DefaultLayoutAlgorithm as Venn2Layout
    from matplotlib_venn.layout.venn3 import DefaultLayoutAlgorithm as Venn3Layout

    diagrams = [sets for sets in VENN_SETS if set(sets) <= set(criteria)]
    figure, axes = charts.figure(charts.PAPER_WIDTH, 2.9, ncols=len(diagrams), squeeze=False)
    for ax, sets in zip(axes[0], diagrams):
        regions = venn_regions(combinations, matrix, sets)
        # matplotlib-venn orders regions by their binary id read left to right (10, 01, 11, …).
        ids = sorted(
            (r for r in regions if any(r)), key=lambda r: int("".join("1" if x else "0" for x in reversed(r)), 2)
        )
        draw, layout = (venn2, Venn2Layout) if len(sets) == 2 else (venn3, Venn3Layout)
        diagram = draw(
            subsets=[1] * len(ids),
            set_labels=sets,
            set_colors=[CRITERION_COLORS.get(s, UNKNOWN_COLOR) for s in sets],
            alpha=0.45,
            ax=ax,
            layout_algorithm=layout(fixed_subset_sizes=[1] * len(ids)),
        )
        for region in ids:
            label = diagram.get_label_by_id("".join("1" if x else "0" for x in region))
            if label is not None:
                label.set_text(_percent(regions[region]))
                label.set_fontsize(7)
        for text in diagram.set_labels:
            if text is not None:
                text.set_fontsize(8)
        outside = _percent(regions[(False,) * len(sets)]).replace("\n", " ")
        ax.set_title(f"pruned by none of them:\n{outside}", fontsize=8)
    figure.suptitle(
        f"Overlap of pruned kernels (% of all kernels) — {title}\n"
        f"mean ± population std over n = {matrix.shape[0]} runs; region areas not to scale"
    )
    return figure


def _percent(stat: Stat | None) -> str:
    return "–" if stat is None else f"{stat.mean * 100:.1f}%\n± {stat.std * 100:.1f}"
