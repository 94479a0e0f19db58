"""A report: its tables, its charts (drawn only when files are asked for) and how to write them."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from psykedelic_cli.reports import tables as render

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Chart:
    """A figure to draw on demand: ``draw()`` builds it from already aggregated data."""

    stem: str
    draw: Callable[[], "Figure"]


@dataclass
class Report:
    name: str
    record_fields: tuple[str, ...]
    """The key columns of the long-format CSV/JSON records, in order (mean, std, n follow)."""
    tables: list[render.Table]
    charts: list[Chart] = field(default_factory=list)

    def text(self, table_format: str) -> str:
        """The tables as LaTeX, Markdown, CSV or JSON text (the rich table is ``rich_tables``)."""
        if table_format == "latex":
            return render.to_latex(self.tables)
        if table_format == "markdown":
            return render.to_markdown(self.tables)
        if table_format == "csv":
            return render.to_csv(self.tables, self.record_fields)
        if table_format == "json":
            return render.to_json(self.name, self.tables, self.record_fields)
        raise ValueError(f"no text rendering for table format {table_format!r}")

    def rich_tables(self, width: int | None = None) -> list:
        """The tables for a terminal ``width`` columns wide (wide tables come in column chunks)."""
        return [chunk for table in self.tables for chunk in render.to_rich(table, width)]

    def write(self, out_dir: Path, image_format: str, on_chart: Callable[[], None] | None = None) -> list[Path]:
        """Write ``<name>.tex``, ``.csv``, ``.md`` and every chart into ``out_dir``; return the paths.

        ``on_chart()`` is called as each chart is written (for a progress bar).
        """
        from psykedelic_cli.reports.charts import save_chart

        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for suffix, table_format in ((".tex", "latex"), (".csv", "csv"), (".md", "markdown")):
            path = out_dir / f"{self.name}{suffix}"
            path.write_text(self.text(table_format), encoding="utf-8")
            paths.append(path)
        jobs = [(chart, out_dir / f"{file_stem(chart.stem)}.{image_format}", image_format) for chart in self.charts]
        for_each_in_parallel(save_chart, jobs, on_done=on_chart)
        return paths + [path for _, path, _ in jobs]


def for_each_in_parallel(function: Callable, jobs: list[tuple], on_done: Callable[[], None] | None = None) -> None:
    """``function(*job)`` for every job, on every CPU when there are several jobs.

    Drawing a chart is CPU-bound matplotlib work (layout, rasterising), so reports with
    many charts use forked workers that inherit the already imported modules; where fork
    is unavailable, or for a single job, the jobs run here one after another.
    ``on_done()`` is called after each job, in job order.
    """
    done = on_done or (lambda: None)
    import multiprocessing

    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for job in jobs:
            function(*job)
            done()
        return
    from concurrent.futures import ProcessPoolExecutor

    import matplotlib.figure  # noqa: F401  (imported once, before forking)

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for _ in pool.map(function, *zip(*jobs)):
            done()


def file_stem(text: str) -> str:
    """A portable file name: letters, digits, ``.``, ``-`` and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")
