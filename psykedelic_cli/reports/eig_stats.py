"""``eig-stats``: how often the eigenvalues of kernels are complex, per dataset × model.

Columns (SPEC.md): the share of complex eigenvalues among all eigenvalues, then for
each eigenvalue criterion the *target* complex ratio (kernels whose deciding
eigenvalue is complex) and the *pruned* complex ratio (the same share among the
kernels that criterion prunes). A run that pruned nothing has no pruned ratio: it
is left out of that cell, which the cell's n shows.
"""

from __future__ import annotations

from typing import Sequence

from psykedelic_cli.reports.aggregate import group_by_config, runs_with, settings_text, summarize, varying_settings
from psykedelic_cli.reports.report import Report
from psykedelic_cli.reports.tables import Cell, Table
from psykedelic_cli.store.schema import EIG_CRITERIA

ALL_EIGENVALUES = "all"
COLUMNS = [(ALL_EIGENVALUES, "complex_ratio")] + [
    (criterion, measure) for criterion in EIG_CRITERIA for measure in ("target_complex_ratio", "pruned_complex_ratio")
]
LABELS = {
    "criterion": "Criterion",
    "measure": "Measure",
    "dataset": "Dataset",
    "model": "Model",
    ALL_EIGENVALUES: "all eigenvalues",
    "complex_ratio": "complex",
    "target_complex_ratio": "target",
    "pruned_complex_ratio": "pruned",
}
# Only the threshold modes are analysed, so the contribution and sorted-mode parameters do not matter.
_IRRELEVANT = ("dataset", "model", "contribution_threshold", "rate")


def run_ratios(eig_stats: dict) -> dict[tuple[str, str], float | None]:
    """One run's ratios keyed like ``COLUMNS``."""
    criteria = eig_stats.get("criteria") or {}
    ratios = {(ALL_EIGENVALUES, "complex_ratio"): eig_stats.get("complex_ratio")}
    for criterion, measure in COLUMNS[1:]:
        ratios[(criterion, measure)] = (criteria.get(criterion) or {}).get(measure)
    return ratios


def eig_stats_report(runs: Sequence[dict]) -> Report:
    """Complex-eigenvalue ratios (mean ± std over runs) per dataset × model, one table per setting."""
    runs = runs_with(runs, "eig_stats")
    splits = varying_settings(runs, exclude=_IRRELEVANT)
    by_setting: dict[tuple, dict[tuple, dict]] = {}
    for key, members in group_by_config(runs, (*splits, "dataset", "model")).items():
        per_run = [run_ratios(run["results"]["eig_stats"]) for run in members]
        by_setting.setdefault(key[: len(splits)], {})[key[len(splits) :]] = {
            column: summarize(ratios[column] for ratios in per_run) for column in COLUMNS
        }
    tables = []
    for setting, rows_stats in by_setting.items():
        title = "Complex eigenvalues of the kernels"
        if setting:
            title += f" ({settings_text(splits, setting)})"
        tables.append(
            Table(
                title=title,
                keys=dict(zip(splits, setting)),
                row_fields=("dataset", "model"),
                column_fields=("criterion", "measure"),
                rows=list(rows_stats),
                columns=COLUMNS,
                cells={
                    (row, column): Cell(stat) for row, stats in rows_stats.items() for column, stat in stats.items()
                },
                notes=(
                    "complex: share of complex eigenvalues among all eigenvalues; "
                    "target: share of kernels whose deciding eigenvalue (arg-min or arg-max) is complex; "
                    "pruned: that share among the kernels the criterion prunes.",
                ),
                labels=LABELS,
            )
        )
    return Report(name="eig_stats", record_fields=("dataset", "model", "criterion", "measure", *splits), tables=tables)
