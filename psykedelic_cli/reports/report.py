"""A report: its tables, its charts (drawn only when files are asked for) and how to write them."""

from __future__ import annotations

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

    def write(self, out_dir: Path, image_format: str) -> list[Path]:
        """Write ``<name>.tex``, ``.csv``, ``.md`` and every chart into ``out_dir``; return the paths."""
        from psykedelic_cli.reports.charts import save_chart

        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for suffix, table_format in ((".tex", "latex"), (".csv", "csv"), (".md", "markdown")):
            path = out_dir / f"{self.name}{suffix}"
            path.write_text(self.text(table_format), encoding="utf-8")
            paths.append(path)
        for chart in self.charts:
            path = out_dir / f"{file_stem(chart.stem)}.{image_format}"
            save_chart(chart, path, image_format)
            paths.append(path)
        return paths


def file_stem(text: str) -> str:
    """A portable file name: letters, digits, ``.``, ``-`` and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")
