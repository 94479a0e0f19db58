"""A report: its tables, its charts (drawn only when files are asked for) and how to write them."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar

from psykedelic_cli.reports import tables as render

if TYPE_CHECKING:
    from matplotlib.figure import Figure


_TABLE_FILES = ((".tex", "latex"), (".csv", "csv"), (".md", "markdown"))


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

    renderer: ClassVar = render
    """The module that renders ``tables`` (``to_latex``, ``to_markdown``, ``to_rich``)."""

    def text(self, table_format: str) -> str:
        """The tables as LaTeX, Markdown, CSV or JSON text (the rich table is ``rich_tables``)."""
        if table_format == "latex":
            return self.renderer.to_latex(self.tables)
        if table_format == "markdown":
            return self.renderer.to_markdown(self.tables)
        if table_format in ("csv", "json"):
            return self.long_format(table_format)
        raise ValueError(f"no text rendering for table format {table_format!r}")

    def long_format(self, table_format: str) -> str:
        """The ``"csv"`` or ``"json"`` long-format records of the tables (keys, mean, std, n per cell)."""
        if table_format == "csv":
            return render.to_csv(self.tables, self.record_fields)
        return render.to_json(self.name, self.tables, self.record_fields)

    def rich_tables(self, width: int | None = None) -> list:
        """The tables for a terminal ``width`` columns wide (wide tables come in column chunks)."""
        return [chunk for table in self.tables for chunk in self.renderer.to_rich(table, width)]

    def table_paths(self, out_dir: Path) -> dict[str, Path]:
        """``{table format: file}`` of the tables ``write`` writes into ``out_dir``."""
        return {table_format: out_dir / f"{self.name}{suffix}" for suffix, table_format in _TABLE_FILES}

    def chart_paths(self, out_dir: Path, image_format: str) -> list[Path]:
        """The chart files ``write`` writes into ``out_dir``, in chart order."""
        return [out_dir / f"{file_stem(chart.stem)}.{image_format}" for chart in self.charts]

    def check_outputs(self, out_dir: Path, image_format: str) -> None:
        """PsykError unless every file ``write`` would write is distinct and no folder stands in its place."""
        from psykedelic_cli.outputs import check_output_files

        paths = [*self.table_paths(out_dir).values(), *self.chart_paths(out_dir, image_format)]
        check_output_files(paths, f"psyk report {self.name.replace('_', '-')} --out-dir {out_dir}")

    def write(
        self,
        out_dir: Path,
        image_format: str,
        on_chart: Callable[[], None] | None = None,
        workers: "ChartWorkers | None" = None,
    ) -> list[Path]:
        """Write ``<name>.tex``, ``.csv``, ``.md`` and every chart into ``out_dir``; return the paths.

        Each file is written whole or not at all; PsykError before anything is written if
        two outputs would be the same file or a folder stands where a file goes.
        ``on_chart()`` is called as each chart is written (for a progress bar). Charts are
        drawn by ``workers`` when given (started early, see ``ChartWorkers``), else by
        workers started here.
        """
        from psykedelic_cli.outputs import write_text
        from psykedelic_cli.reports.charts import save_chart

        self.check_outputs(out_dir, image_format)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [write_text(path, self.text(table_format)) for table_format, path in self.table_paths(out_dir).items()]
        chart_paths = self.chart_paths(out_dir, image_format)
        jobs = [(chart, path, image_format) for chart, path in zip(self.charts, chart_paths)]
        with ChartWorkers(len(jobs)) if workers is None else contextlib.nullcontext(workers) as drawing:
            drawing.run(save_chart, jobs, on_done=on_chart)
        return paths + [path for _, path, _ in jobs]


class ChartWorkers:
    """Processes that draw charts, one per CPU, ready before the charts are known.

    Drawing is CPU-bound matplotlib work (layout, rasterising). Started before the store
    is read, the workers import matplotlib and load their fonts while this process
    reads and aggregates, so neither waits for the other; forked from a process that
    has not read the store yet, they start small. Where fork is unavailable, with one
    CPU or one chart, the charts are drawn here one after another.
    """

    def __init__(self, charts: int | None = None, modules: tuple[str, ...] = ()):
        """Up to ``charts`` workers (default: one per CPU) that also import ``modules``
        (what the coming charts need beyond matplotlib, e.g. ``matplotlib_venn``)."""
        import multiprocessing

        cpus = os.cpu_count() or 1
        processes = cpus if charts is None else min(charts, cpus)
        self.pool = None
        self.used = False
        if processes >= 2 and "fork" in multiprocessing.get_all_start_methods():
            self.pool = multiprocessing.get_context("fork").Pool(processes, initializer=_warm_up, initargs=(modules,))

    def __enter__(self) -> "ChartWorkers":
        return self

    def __exit__(self, kind, error, trace) -> None:
        if self.pool is None:
            return
        if error is None and self.used:
            self.pool.close()
        else:  # no charts after all, a failed read or Ctrl-C: do not wait for the warm-up
            self.pool.terminate()
        self.pool.join()

    def run(self, function: Callable, jobs: list[tuple], on_done: Callable[[], None] | None = None) -> None:
        """``function(*job)`` for every job; ``on_done()`` after each, in job order."""
        done = on_done or (lambda: None)
        if self.pool is None or len(jobs) < 2:
            for job in jobs:
                function(*job)
                done()
            return
        self.used = True
        for _ in self.pool.imap(_call, [(function, job) for job in jobs]):
            done()


def _call(function_and_job: tuple) -> None:
    function, job = function_and_job
    function(*job)


def _warm_up(modules: tuple[str, ...]) -> None:
    """In a new worker: ignore Ctrl-C (the parent stops the pool), give the reading process
    the CPU first, import matplotlib and ``modules``, load the fonts."""
    import importlib
    import io
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(5)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1))
    figure.subplots().set_title("warm-up")
    FigureCanvasAgg(figure).print_png(io.BytesIO())
    for module in modules:
        importlib.import_module(module)


def file_stem(text: str) -> str:
    """A portable file name: letters, digits, ``.``, ``-`` and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")
