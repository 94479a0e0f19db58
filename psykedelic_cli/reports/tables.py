"""The one table model every report fills, and its renderers (rich, LaTeX, Markdown, CSV, JSON).

A ``Table`` is rows × columns of ``Cell`` (a ``Stat`` and a "best" flag). Rows and
columns are tuples of key values named by ``row_fields`` / ``column_fields``; the
values every cell shares are ``keys``. A cell's *record* is all of these plus
mean, std and n (and ``best`` where the table marks winners) — the long format of
the CSV and JSON outputs, which keep the stored units (fractions, counts) while the
human formats apply ``scale``. Best cells are bold in LaTeX and Markdown and carry a
``*`` in the terminal, so the mark survives pipes, files and terminals without bold.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

from psykedelic_cli.reports.aggregate import STD_NOTE, Stat, format_value

if TYPE_CHECKING:
    from rich.table import Table as RichTable

STAT_FIELDS = ("mean", "std", "n")
BEST_MARK = "*"
"""Prefixed to a best cell in the terminal: plain text, so no pipe or dumb terminal loses it."""


@dataclass(frozen=True)
class Cell:
    stat: Stat | None
    best: bool = False


@dataclass
class Table:
    title: str
    keys: dict[str, object]
    row_fields: tuple[str, ...]
    column_fields: tuple[str, ...]
    rows: list[tuple]
    columns: list[tuple]
    cells: dict[tuple[tuple, tuple], Cell]
    scale: float = 100.0
    """Display multiplier: 100 shows fractions as percentages, 1 shows counts."""
    digits: int = 2
    notes: tuple[str, ...] = ()
    labels: Mapping[object, str] = field(default_factory=dict)
    """Display names of field names and key values (the records keep the raw values)."""
    best_means: str = ""
    """What a best cell is, e.g. "the best of each column"; "" for a table that marks none."""

    def cell(self, row: tuple, column: tuple) -> Cell:
        return self.cells.get((row, column), Cell(None))

    def records(self) -> Iterator[dict]:
        """One dict per filled cell: keys, column and row values, mean, std, n, best."""
        for row in self.rows:
            for column in self.columns:
                cell = self.cell(row, column)
                if cell.stat is None:
                    continue
                yield {
                    **self.keys,
                    **dict(zip(self.column_fields, column)),
                    **dict(zip(self.row_fields, row)),
                    "mean": cell.stat.mean,
                    "std": cell.stat.std,
                    "n": cell.stat.n,
                    **({"best": cell.best} if self.best_means else {}),
                }

    def label(self, value: object) -> str:
        return self.labels.get(value, format_value(value))

    def header_levels(self) -> tuple[list[int], list[str]]:
        """Indices of the column levels that vary, and ``"field: value"`` for the constant ones."""
        varying, constant = [], []
        for level, name in enumerate(self.column_fields):
            values = {column[level] for column in self.columns}
            if len(values) > 1 or len(self.column_fields) == 1:
                varying.append(level)
            else:
                constant.append(f"{self.label(name)}: {self.label(values.pop())}")
        if not varying:  # a single column: its levels are its only name
            return list(range(len(self.column_fields))), []
        return varying, constant

    def run_counts(self) -> set[int]:
        """The distinct numbers of runs behind the filled cells."""
        return {cell.stat.n for cell in self.cells.values() if cell.stat is not None}

    def caption(self, best_mark: str = "Bold") -> str:
        """What the numbers are: notes, what ``best_mark`` (how the renderer shows a best cell)
        marks, the statistic, the unit and the number of runs."""
        counts = self.run_counts()
        runs = f"n = {counts.pop()} runs per cell" if len(counts) == 1 else "[n] = runs per cell"
        unit = "; values in %" if self.scale == 100 else ""
        _, constant = self.header_levels()
        best = [f"{best_mark} marks {self.best_means}."] if self.best_means else []
        return " ".join([*self.notes, *best, *(f"{c}." for c in constant), f"{STD_NOTE}{unit}; {runs}."])

    def cell_texts(self) -> dict[tuple[tuple, tuple], str]:
        """``"mean ± std"`` of every cell in display units, with ``[n]`` only when the cells
        do not all share one run count (the caption states a shared one)."""
        counts = len(self.run_counts()) > 1
        texts = {}
        for row in self.rows:
            for column in self.columns:
                stat = self.cell(row, column).stat
                if stat is None:
                    texts[(row, column)] = "–"
                    continue
                text = f"{stat.mean * self.scale:.{self.digits}f} ± {stat.std * self.scale:.{self.digits}f}"
                texts[(row, column)] = f"{text} [{stat.n}]" if counts else text
        return texts

    def row_labels(self) -> Iterator[list[str]]:
        """Row label columns with a leading value left blank while it repeats the row above."""
        previous: tuple = ()
        for row in self.rows:
            shown = []
            for level, value in enumerate(row):
                same_prefix = previous[: level + 1] == row[: level + 1]
                shown.append("" if same_prefix and level < len(row) - 1 else self.label(value))
            previous = row
            yield shown


def mark_best(
    stats: Mapping[tuple[tuple, tuple], Stat | None],
    rows: Sequence[tuple],
    columns: Sequence[tuple],
    *,
    along: str,
    eligible_rows: Sequence[tuple] | None = None,
) -> dict[tuple[tuple, tuple], Cell]:
    """Cells flagged best where their mean is the maximum of their column (``along="column"``)
    or row (``along="row"``) among ``eligible_rows`` (default all); ties all win."""
    eligible = set(rows if eligible_rows is None else eligible_rows)
    lines = columns if along == "column" else rows
    best: set[tuple[tuple, tuple]] = set()
    for line in lines:
        keys = [(row, line) for row in rows] if along == "column" else [(line, column) for column in columns]
        contenders = {k: stats[k].mean for k in keys if stats.get(k) is not None and k[0] in eligible}
        if contenders:
            top = max(contenders.values())
            best.update(k for k, mean in contenders.items() if mean >= top - 1e-12)
    return {key: Cell(stat, key in best) for key, stat in stats.items()}


# --- terminal -----------------------------------------------------------------------------


_RICH_PADDING = 3  # a column's border and padding
_MIN_LABEL = 4


def to_rich(table: Table, width: int | None = None) -> list["RichTable"]:
    """The table for the terminal, every number in full within ``width`` columns.

    Wider than ``width``, it is split into column chunks that each repeat the row labels
    (27 modes side by side fit no terminal); row labels too long to leave room are wrapped
    after their ``+``, spaces or commas. Best cells carry ``BEST_MARK`` (and are bold green
    where the terminal shows styles).
    """
    from rich.markup import escape
    from rich.table import Table as RichTable

    room = width or 10**6
    levels, _ = table.header_levels()
    headers = ["\n".join(table.label(column[i]) for i in levels) for column in table.columns]
    texts = {
        key: f"{BEST_MARK}{text}" if table.cell(*key).best else text for key, text in table.cell_texts().items()
    }
    widths = [
        max([*(len(line) for line in header.splitlines()), *(len(texts[(row, column)]) for row in table.rows)])
        + _RICH_PADDING
        for header, column in zip(headers, table.columns)
    ]
    names = [table.label(name) for name in table.row_fields]
    labels = list(table.row_labels())
    columns = [[name, *(row[i] for row in labels)] for i, name in enumerate(names)]
    natural = [max(len(text) for text in column) for column in columns]
    unbroken = [max(len(word.rstrip()) for text in column for word in _BREAKS.findall(text)) for column in columns]
    caps = _label_widths(natural, unbroken, widths, room)
    names = [_wrap(name, cap) for name, cap in zip(names, caps)]
    labels = [[_wrap(text, cap) for text, cap in zip(row, caps)] for row in labels]
    chunks = _chunks(widths, room - sum(caps) - _RICH_PADDING * len(caps) - 1)  # - 1: the table's left edge
    rich_tables = []
    for first, last in chunks:
        span = f"column {last}" if last == first + 1 else f"columns {first + 1}–{last}"
        title = table.title if len(chunks) == 1 else f"{table.title} ({span} of {len(table.columns)})"
        caption = table.caption(best_mark=BEST_MARK)
        rich_table = RichTable(title=escape(title), caption=escape(caption), caption_justify="left")
        # Widths are chosen so that nothing needs wrapping; were the terminal narrower than one
        # column, folding keeps every character where rich would cut the text off with "…".
        for name in names:
            rich_table.add_column(escape(name), overflow="fold")
        for header in headers[first:last]:
            rich_table.add_column(escape(header), justify="right", overflow="fold")
        for row, row_labels in zip(table.rows, labels):
            cells = []
            for column in table.columns[first:last]:
                text = escape(texts[(row, column)])
                cells.append(f"[bold green]{text}[/]" if table.cell(row, column).best else text)
            rich_table.add_row(*map(escape, row_labels), *cells)
        rich_tables.append(rich_table)
    return rich_tables


def _label_widths(natural: Sequence[int], unbroken: Sequence[int], widths: Sequence[int], room: int) -> list[int]:
    """Text widths of the row-label columns beside data columns of ``widths``: as many data
    columns per chunk as fit beside the labels at their ``natural`` widths, or narrowed
    (widest first, words kept whole: no narrower than ``unbroken``); where not even one
    column fits so, labels are cut to make room for one."""
    padding = _RICH_PADDING * len(natural)
    ranked = sorted(widths, reverse=True)
    for columns in range(len(ranked), 0, -1):
        budget = room - 1 - padding - sum(ranked[:columns])
        if sum(natural) <= budget:
            return list(natural)
        if sum(unbroken) <= budget:
            return _narrowed(natural, unbroken, budget)
    floors = [min(n, _MIN_LABEL) for n in natural]
    return _narrowed(natural, floors, room - 1 - padding - (ranked[0] if ranked else 0))


def _narrowed(natural: Sequence[int], floors: Sequence[int], budget: int) -> list[int]:
    """``natural`` widths capped at the largest common width that fits ``budget``, each
    no narrower than its floor."""
    for cap in range(max(natural, default=0), 0, -1):
        capped = [min(n, max(cap, floor)) for n, floor in zip(natural, floors)]
        if sum(capped) <= budget:
            return capped
    return list(floors)


_BREAKS = re.compile(r"[^ +,]*[ +,]|[^ +,]+")
"""A line break may follow a space, a ``+`` (``det+min_eig``) or a comma."""


def _wrap(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` characters, broken after ``_BREAKS`` where it can."""
    if len(text) <= width:
        return text
    pieces = [token[i : i + width] for token in _BREAKS.findall(text) for i in range(0, len(token), width)]
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1] + piece.rstrip()) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(line.rstrip() for line in lines)


def _chunks(widths: Sequence[int], room: int) -> list[tuple[int, int]]:
    """``[(first, last), …]`` column ranges whose widths fit ``room`` (at least one column each)."""
    chunks, first, used = [], 0, 0
    for i, column_width in enumerate(widths):
        if i > first and used + column_width > room:
            chunks.append((first, i))
            first, used = i, 0
        used += column_width
    chunks.append((first, len(widths)))
    return chunks


# --- Markdown -----------------------------------------------------------------------------


def to_markdown(tables: Sequence[Table]) -> str:
    blocks = []
    for table in tables:
        levels, _ = table.header_levels()
        header = [table.label(f) for f in table.row_fields] + [
            " / ".join(table.label(column[i]) for i in levels) for column in table.columns
        ]
        lines = [
            f"### {table.title}",
            "",
            _md_row(header),
            "|" + "|".join(["---"] * len(table.row_fields) + ["--:"] * len(table.columns)) + "|",
        ]
        texts = table.cell_texts()
        for row, labels in zip(table.rows, table.row_labels()):
            cells = [f"**{texts[(row, c)]}**" if table.cell(row, c).best else texts[(row, c)] for c in table.columns]
            lines.append(_md_row(labels + cells))
        lines += ["", f"*{table.caption()}*"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


# --- LaTeX (booktabs) ---------------------------------------------------------------------

_LATEX_REPLACEMENTS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "–": "--", "≥": r"$\geq$", "ⁿ": r"$^{n}$", "²ⁿ": r"$^{2n}$", "ᵀ": r"$^{\top}$", "λ": r"$\lambda$",
}
# Longest first, so "²ⁿ" becomes one superscript rather than two clashing ones.
_LATEX_PATTERN = re.compile("|".join(re.escape(k) for k in sorted(_LATEX_REPLACEMENTS, key=len, reverse=True)))


def latex_escape(text: str) -> str:
    return _LATEX_PATTERN.sub(lambda match: _LATEX_REPLACEMENTS[match.group()], text)


def to_latex(tables: Sequence[Table]) -> str:
    """One booktabs ``table`` per Table: grouped column headers with ``\\cmidrule``, best cells in bold."""
    return "\n".join(_latex_table(table) for table in tables)


def _latex_table(table: Table) -> str:
    levels, _ = table.header_levels()
    n_rows = len(table.row_fields)
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}. {latex_escape(table.caption())}}}",
        r"\begin{tabular}{" + "l" * n_rows + "r" * len(table.columns) + "}",
        r"\toprule",
    ]
    for depth, level in enumerate(levels):
        spans = _spans([column[level] for column in table.columns]) if depth < len(levels) - 1 else None
        if spans is None:
            heads = [latex_escape(table.label(f)) for f in table.row_fields] + [
                latex_escape(table.label(column[level])) for column in table.columns
            ]
            lines.append(" & ".join(heads) + r" \\")
            continue
        heads, rules, start = [""] * n_rows, [], n_rows + 1
        for value, width in spans:
            heads.append(
                rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(table.label(value))}}}"
                if width > 1
                else latex_escape(table.label(value))
            )
            rules.append(rf"\cmidrule(lr){{{start}-{start + width - 1}}}")
            start += width
        lines += [" & ".join(heads) + r" \\", " ".join(rules)]
    lines.append(r"\midrule")
    counts = len(table.run_counts()) > 1
    previous_first = None
    for row, labels in zip(table.rows, table.row_labels()):
        if n_rows > 1 and previous_first is not None and row[0] != previous_first:
            lines.append(r"\midrule")
        previous_first = row[0]
        texts = [latex_escape(label) for label in labels]
        texts += [_latex_cell(table, table.cell(row, column), counts) for column in table.columns]
        lines.append(" & ".join(texts) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def _latex_cell(table: Table, cell: Cell, counts: bool) -> str:
    if cell.stat is None:
        return "--"
    mean, std = cell.stat.mean * table.scale, cell.stat.std * table.scale
    body = rf"{mean:.{table.digits}f} \pm {std:.{table.digits}f}"
    if cell.best:
        body = rf"\mathbf{{{body}}}"
    count = rf"\,{{\scriptstyle[{cell.stat.n}]}}" if counts else ""
    return f"${body}{count}$"


def _spans(values: Sequence[object]) -> list[tuple[object, int]]:
    """Consecutive equal values merged: ``[a, a, b]`` → ``[(a, 2), (b, 1)]``."""
    spans: list[tuple[object, int]] = []
    for value in values:
        if spans and spans[-1][0] == value:
            spans[-1] = (value, spans[-1][1] + 1)
        else:
            spans.append((value, 1))
    return spans


# --- CSV and JSON (long format) -----------------------------------------------------------


def record_columns(tables: Sequence[Table], fields: Sequence[str]) -> tuple[str, ...]:
    """``fields`` + mean, std, n, and ``best`` when the tables mark best cells."""
    return (*fields, *STAT_FIELDS, *(("best",) if any(table.best_means for table in tables) else ()))


def report_records(tables: Sequence[Table], fields: Sequence[str]) -> list[dict]:
    """Every filled cell of every table as a record with exactly the ``record_columns``."""
    columns = record_columns(tables, fields)
    return [{f: record.get(f) for f in columns} for table in tables for record in table.records()]


def to_csv(tables: Sequence[Table], fields: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = record_columns(tables, fields)
    writer.writerow(columns)
    for record in report_records(tables, fields):
        writer.writerow([_csv_value(record[f]) for f in columns])
    return buffer.getvalue()


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return "+".join(map(str, value))
    return value


def to_json(name: str, tables: Sequence[Table], fields: Sequence[str]) -> str:
    document = {
        "report": name,
        "statistic": f"{STD_NOTE} over n runs",
        "records": report_records(tables, fields),
    }
    return json.dumps(document, indent=2) + "\n"
