"""A table of already formatted cells, for reports whose cells are not ``mean ± std`` (test results).

A ``Grid`` is a header and rows of text; its renderers mirror those of ``tables.Table``
(rich, LaTeX booktabs, Markdown, HTML). The machine-readable side of such a report is a
list of long-format records, written by ``records_csv`` and ``records_json`` in the
stored units.
"""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from psykedelic_cli.reports.tables import latex_escape

if TYPE_CHECKING:
    from rich.table import Table as RichTable


@dataclass
class Grid:
    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    caption: str = ""
    label_columns: int = 1
    """The first this many columns are labels (left-aligned); the others are numbers."""
    strong: set[tuple[int, int]] = field(default_factory=set)
    """(row, column) cells to emphasise: bold in LaTeX, Markdown and HTML, ``*`` in the terminal."""
    runs: tuple[str, ...] = ()
    """The ids of the runs behind the numbers (the results page links them)."""

    def text(self, row: int, column: int, mark: str = "") -> str:
        value = self.rows[row][column]
        return f"{mark}{value}" if mark and (row, column) in self.strong else value


_PADDING = 3  # a rich column's border and padding


def to_rich(grid: Grid, width: int | None = None) -> list["RichTable"]:
    """The grid for a terminal ``width`` columns wide, every cell and header in full on one line;
    wider grids come in column chunks that repeat the label columns."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    def natural(column: int) -> int:
        return max([len(grid.header[column]), *(len(grid.text(r, column, "*")) for r in range(len(grid.rows)))])

    widths = [natural(c) for c in range(len(grid.header))]
    labels = list(range(grid.label_columns))
    room = (width or 10**6) - 1 - sum(widths[c] + _PADDING for c in labels)
    chunks, current, used = [], [], 0
    for column in range(grid.label_columns, len(grid.header)):
        if current and used + widths[column] + _PADDING > room:
            chunks.append(current)
            current, used = [], 0
        current.append(column)
        used += widths[column] + _PADDING
    chunks.append(current)
    tables = []
    for number, chunk in enumerate(chunks, start=1):
        title = grid.title if len(chunks) == 1 else f"{grid.title} (part {number} of {len(chunks)})"
        table = RichTable(title=escape(title), caption=escape(grid.caption), caption_justify="left")
        for column in (*labels, *chunk):
            table.add_column(
                escape(grid.header[column]), justify="left" if column in labels else "right",
                min_width=widths[column], overflow="fold",
            )
        for r in range(len(grid.rows)):
            cells = []
            for column in (*labels, *chunk):
                text = escape(grid.text(r, column, "*"))
                cells.append(f"[bold green]{text}[/]" if (r, column) in grid.strong else text)
            table.add_row(*cells)
        tables.append(table)
    return tables


def to_markdown(grids: Sequence[Grid]) -> str:
    blocks = []
    for grid in grids:
        def row(cells) -> str:
            return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

        lines = [f"### {grid.title}", "", row(grid.header)]
        numbers = len(grid.header) - grid.label_columns
        lines.append("|" + "|".join(["---"] * grid.label_columns + ["--:"] * numbers) + "|")
        for r, cells in enumerate(grid.rows):
            lines.append(row(f"**{c}**" if (r, i) in grid.strong else c for i, c in enumerate(cells)))
        if grid.caption:
            lines += ["", f"*{grid.caption}*"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def to_latex(grids: Sequence[Grid]) -> str:
    """One booktabs ``table`` per grid, emphasised cells in bold."""
    out = []
    for grid in grids:
        columns = "l" * grid.label_columns + "r" * (len(grid.header) - grid.label_columns)
        lines = [
            r"\begin{table}[htbp]",
            r"\centering",
            rf"\caption{{{latex_escape(grid.title)}. {latex_escape(grid.caption)}}}",
            rf"\begin{{tabular}}{{{columns}}}",
            r"\toprule",
            " & ".join(latex_escape(h) for h in grid.header) + r" \\",
            r"\midrule",
        ]
        for r, cells in enumerate(grid.rows):
            texts = [latex_escape(c) for c in cells]
            texts = [rf"\textbf{{{t}}}" if (r, i) in grid.strong else t for i, t in enumerate(texts)]
            lines.append(" & ".join(texts) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
        out.append("\n".join(lines))
    return "\n".join(out)


def to_html(grid: Grid) -> str:
    """A ``<table>`` whose header cells sort it (the page's script); numbers carry ``class="num"``."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in grid.header)
    body = []
    for r, cells in enumerate(grid.rows):
        tds = []
        for i, c in enumerate(cells):
            text = html.escape(c)
            if (r, i) in grid.strong:
                text = f"<strong>{text}</strong>"
            tds.append(f'<td class="num">{text}</td>' if i >= grid.label_columns else f"<td>{text}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    caption = f"<caption>{html.escape(grid.title)}</caption>"
    note = f'<p class="caption">{html.escape(grid.caption)}</p>' if grid.caption else ""
    rows = "".join(body)
    return f'<table class="sortable">{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}'


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return "+".join(map(str, value))
    return value


def records_csv(records: Sequence[dict], fields: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for record in records:
        writer.writerow([_csv_value(record.get(f)) for f in fields])
    return buffer.getvalue()


def records_json(name: str, records: Sequence[dict], fields: Sequence[str], **about) -> str:
    document = {"report": name, **about, "records": [{f: record.get(f) for f in fields} for record in records]}
    return json.dumps(document, indent=2, allow_nan=False, default=_json_default) + "\n"


def _json_default(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON: {value!r}")
