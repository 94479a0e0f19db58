"""The results page: every report that has runs on one self-contained HTML page.

``write_page`` writes ``index.html`` with the charts beside it (``<report>/<chart>.svg`` or
``.png``); the page loads nothing from the network: its style and its one small script
(click a column header to sort a table; a chart that fails to load is a console error) are
inline. Every number links to the set of runs behind it, and every run id to a section with
the run's config, versions, host and learning curve (an inline SVG drawn here, no
matplotlib). No backend is imported.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from psykedelic_cli.reports.aggregate import config_value, format_value
from psykedelic_cli.reports.grid import Grid, to_html
from psykedelic_cli.reports.report import Report, file_stem
from psykedelic_cli.reports.tables import Table
from psykedelic_cli.store.schema import CONFIG_FIELDS

PAGE = "index.html"
IMAGE_FORMATS = ("svg", "png")
"""What a browser shows in an ``<img>``; PDF is not one of them."""


@dataclass
class Section:
    """One report on the page: its name, the report (None when no run has its results) and its runs."""

    name: str
    report: Report | None
    runs: list[dict] = field(default_factory=list)
    missing: str = ""
    """Why there is no report (the NothingFound message)."""


class RunSets:
    """Numbered sets of run ids, each listed once on the page however many numbers share it."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, ...], int] = {}
        self.given: dict[tuple[str, ...], str] = {}
        """Anchors by the tuple as given: a table's cells mostly repeat one tuple, sorted only once."""

    def anchor(self, runs: Sequence[str]) -> str:
        given = tuple(runs)
        if given not in self.given:
            number = self.ids.setdefault(tuple(sorted(given)), len(self.ids) + 1)
            self.given[given] = f"set-{number}"
        return self.given[given]


def chart_paths(section: Section, out_dir: Path, image_format: str) -> list[Path]:
    assert section.report is not None
    return [out_dir / file_stem(section.name) / path.name for path in section.report.chart_paths(out_dir, image_format)]


def page_outputs(sections: Sequence[Section], out_dir: Path, image_format: str) -> list[Path]:
    """Every file ``write_page`` writes, the page first."""
    charts = [path for s in sections if s.report is not None for path in chart_paths(s, out_dir, image_format)]
    return [out_dir / PAGE, *charts]


def write_page(
    out_dir: Path, sections: Sequence[Section], *, runs: dict[str, dict], filters: dict[str, list], store: str,
    image_format: str = "svg", draw: Callable[[list[tuple]], None] | None = None,
) -> list[Path]:
    """Write the page and its charts into ``out_dir``; return the paths (the page first).

    ``runs``: every run behind a number, by id, with its ``learning_curve``. ``draw(jobs)``
    draws ``(chart, path, image_format)`` jobs (default: one after another, here).
    """
    from psykedelic_cli.outputs import check_output_files, write_text
    from psykedelic_cli.reports.charts import save_chart

    paths = page_outputs(sections, out_dir, image_format)
    check_output_files(paths, f"psyk report html --out-dir {out_dir}")
    jobs = [
        (chart, path, image_format)
        for s in sections if s.report is not None
        for chart, path in zip(s.report.charts, chart_paths(s, out_dir, image_format))
    ]
    (draw or (lambda work: [save_chart(*job) for job in work]))(jobs)
    write_text(out_dir / PAGE, page_html(sections, runs=runs, filters=filters, store=store, out_dir=out_dir,
                                         image_format=image_format))
    return paths


def page_html(
    sections: Sequence[Section], *, runs: dict[str, dict], filters: dict[str, list], store: str, out_dir: Path,
    image_format: str,
) -> str:
    sets = RunSets()
    present = [s for s in sections if s.report is not None]
    body = [
        "<header><h1>psyk results</h1>",
        f"<p>Store <code>{html.escape(store)}</code>: {len(runs)} completed run(s) behind the numbers below; every "
        "number is a mean ± population std (ddof = 0) over the runs it links to.</p>",
        _filters_html(filters),
        "<nav><ul>",
        *(f'<li><a href="#report-{_id(s.name)}">{html.escape(s.name)}</a></li>' for s in present),
        '<li><a href="#runs">runs</a></li></ul></nav>',
    ]
    absent = [s for s in sections if s.report is None]
    if absent:
        body.append('<p class="absent">Not shown (no matching run has their results): '
                    + ", ".join(f"{html.escape(s.name)} ({html.escape(s.missing)})" for s in absent) + ".</p>")
    body.append("</header><main>")
    for section in present:
        body.append(_section_html(section, sets, out_dir, image_format))
    body.append(_runs_html(sets, runs))
    body.append("</main>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>psyk results</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{_SCRIPT}</script>\n</body></html>\n"
    )


def _id(text: str) -> str:
    return file_stem(text).lower() or "x"


def _filters_html(filters: dict[str, list]) -> str:
    used = {name: values for name, values in filters.items() if values}
    if not used:
        return '<p class="filters">Filters: none (every completed run of the store).</p>'
    items = "".join(
        f"<li><code>{html.escape(name)}</code> = {html.escape(' or '.join(map(format_value, values)))}</li>"
        for name, values in used.items()
    )
    return f'<div class="filters">Filters used:<ul>{items}</ul></div>'


def _section_html(section: Section, sets: RunSets, out_dir: Path, image_format: str) -> str:
    report = section.report
    assert report is not None
    parts = [
        f'<section id="report-{_id(section.name)}"><h2>{html.escape(section.name)}</h2>',
        f"<p>{len(section.runs)} run(s) with these results.</p>",
    ]
    matcher = _RunMatcher(section.runs)
    for table in report.tables:
        if isinstance(table, Grid):
            anchor = sets.anchor(table.runs)
            parts.append(f'<div class="table">{to_html(table)}<p class="runs">Runs behind these numbers: '
                         f'<a href="#{anchor}">{len(table.runs)} run(s)</a>.</p></div>')
        else:
            parts.append(f'<div class="table">{table_html(table, matcher, sets)}</div>')
    for chart, path in zip(report.charts, chart_paths(section, out_dir, image_format)):
        source = path.relative_to(out_dir).as_posix()
        parts.append(f'<figure><img src="{html.escape(source)}" alt="{html.escape(chart.stem)}">'
                     f"<figcaption>{html.escape(chart.stem)}</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


class _RunMatcher:
    """The runs of a report whose config agrees with a cell's keys (memoised: most cells of a
    table share their config keys)."""

    def __init__(self, runs: Sequence[dict]):
        self.runs = runs
        self.cache: dict[tuple, tuple[str, ...]] = {}

    def __call__(self, criteria: tuple[tuple[str, object], ...]) -> tuple[str, ...]:
        if criteria not in self.cache:
            self.cache[criteria] = tuple(
                run["id"] for run in self.runs if all(config_value(run, f) == v for f, v in criteria)
            )
        return self.cache[criteria]


def _criteria(table: Table, row: tuple, column: tuple) -> tuple[tuple[str, object], ...]:
    """The config fields a cell is keyed by. A ``mode`` row or column is a compared mode, not the
    mode a run trained with, so only a table-wide ``mode`` key (one report's runs) is matched."""
    pairs = [*table.keys.items(), *zip(table.column_fields, column), *zip(table.row_fields, row)]
    cell_fields = {*table.row_fields, *table.column_fields}
    return tuple(
        (f, v) for f, v in pairs if f in CONFIG_FIELDS and not (f == "mode" and f in cell_fields)
    )


def table_html(table: Table, matcher: Callable, sets: RunSets) -> str:
    """A Table as a sortable ``<table>``: the varying column levels as headers, each number a link
    to the runs behind it, best cells bold."""
    levels, _ = table.header_levels()
    head = [*(f"<th>{html.escape(table.label(f))}</th>" for f in table.row_fields)]
    head += [
        f"<th>{'<br>'.join(html.escape(table.label(column[i])) for i in levels)}</th>" for column in table.columns
    ]
    texts = table.cell_texts()
    body = []
    for row, labels in zip(table.rows, table.row_labels()):
        cells = [f"<td>{html.escape(label)}</td>" for label in labels]
        for column in table.columns:
            text = html.escape(texts[(row, column)])
            cell = table.cell(row, column)
            if cell.stat is not None:
                runs = matcher(_criteria(table, row, column))
                text = f'<a href="#{sets.anchor(runs)}" title="{cell.stat.n} of {len(runs)} run(s)">{text}</a>'
            if cell.best:
                text = f"<strong>{text}</strong>"
            cells.append(f'<td class="num">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="sortable"><caption>{html.escape(table.title)}</caption><thead><tr>{"".join(head)}</tr>'
        f'</thead><tbody>{"".join(body)}</tbody></table><p class="caption">{html.escape(table.caption())}</p>'
    )


def _runs_html(sets: RunSets, runs: dict[str, dict]) -> str:
    parts = ['<section id="runs"><h2>Runs</h2><h3>Run sets</h3>']
    for key, number in sets.ids.items():
        links = " ".join(f'<a href="#run-{html.escape(r)}">{html.escape(r)}</a>' for r in key)
        parts.append(f'<div class="set" id="set-{number}"><b>set {number}</b> ({len(key)} run(s)): {links}</div>')
    listed = sorted({r for key in sets.ids for r in key})
    for run_id in listed:
        run = runs.get(run_id)
        parts.append(_run_html(run_id, run) if run is not None else "")
    parts.append("</section>")
    return "\n".join(parts)


def _definition_list(values: dict) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_plain(v))}</td></tr>" for k, v in values.items()
    )
    return f'<table class="kv">{rows}</table>'


def _plain(value: object) -> str:
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_plain, value))
    return "-" if value is None else str(value)


def _run_html(run_id: str, run: dict) -> str:
    about = {k: run.get(k) for k in ("status", "source", "created_at", "finished_at") if run.get(k) is not None}
    return (
        f'<article class="run" id="run-{html.escape(run_id)}"><h3>{html.escape(run_id)}</h3>'
        f"{_definition_list(about)}"
        '<div class="run-parts">'
        f"<div><h4>config</h4>{_definition_list(run.get('config') or {})}</div>"
        f"<div><h4>versions</h4>{_definition_list(run.get('versions') or {})}"
        f"<h4>host</h4>{_definition_list(run.get('host') or {})}</div>"
        f"<div><h4>learning curve</h4>{learning_curve_svg((run.get('results') or {}).get('learning_curve'))}</div>"
        "</div></article>"
    )


_CURVES = (("accuracy", "#1f5fa8", "training accuracy"), ("val_accuracy", "#c0392b", "validation accuracy"))


def learning_curve_svg(curve: dict | None, width: int = 320, height: int = 160) -> str:
    """Training and validation accuracy over the epochs as an inline SVG (accuracy axis 0–1)."""
    series = [(key, color, label, (curve or {}).get(key) or []) for key, color, label in _CURVES]
    if not any(values for *_, values in series):
        return '<p class="none">no learning curve recorded</p>'
    left, bottom, top, right = 34, 22, 8, 8
    plot_w, plot_h = width - left - right, height - top - bottom
    epochs = max(len(values) for *_, values in series)

    def points(values: list) -> str:
        """``x y x y …`` in pixels (SVG takes spaces between the numbers), missing values left out."""
        y = np.array([math.nan if v is None else v for v in values], dtype=float)
        x = left + plot_w * np.arange(len(y)) / max(epochs - 1, 1)
        kept = np.isfinite(y)
        y = top + plot_h * (1 - np.clip(y[kept], 0.0, 1.0))
        return " ".join(map(str, np.column_stack([x[kept], y]).round(1).ravel().tolist()))

    parts = [
        f'<svg class="curve" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="learning curve">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - tick)
        parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" font-size="9">{tick:g}</text>')
    parts.append(f'<text x="{left}" y="{height - 6}" font-size="9">epoch 1</text>')
    parts.append(f'<text x="{width - right}" y="{height - 6}" text-anchor="end" font-size="9">{epochs}</text>')
    for index, (_, color, label, values) in enumerate(series):
        drawn = points(values) if values else ""
        if drawn:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.4" points="{drawn}"/>')
            parts.append(f'<text x="{left + 6}" y="{top + 12 + 11 * index}" font-size="9" fill="{color}">'
                         f"{html.escape(label)}</text>")
    parts.append("</svg>")
    return "".join(parts)


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:0 1rem;
color:#222}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #ccc;margin-top:2.5rem}
nav ul{display:flex;flex-wrap:wrap;gap:.4rem 1rem;list-style:none;padding:0}
table{border-collapse:collapse;margin:.8rem 0 .2rem;font-size:.85rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border-bottom:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.sortable th{cursor:pointer;background:#f4f4f4}table.sortable th:hover{background:#e6e6e6}
td a{color:inherit;text-decoration:none}td a:hover{text-decoration:underline}
.caption{font-size:.78rem;color:#555;max-width:60rem;margin-top:0}
.table{overflow-x:auto}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.75rem;color:#666}
.set{font-size:.8rem;margin:.3rem 0;word-break:break-all}.set a{margin-right:.4rem}
.run{border-top:1px solid #ccc;padding:.4rem 0}.run-parts{display:flex;flex-wrap:wrap;gap:1.5rem}
table.kv th{background:none;font-weight:500;color:#555}table.kv{font-size:.75rem}
.absent,.filters{color:#555;font-size:.9rem}
"""

_SCRIPT = """
document.querySelectorAll("img").forEach(function (image) {
  image.addEventListener("error", function () { console.error("chart missing: " + image.getAttribute("src")); });
  if (image.complete && image.naturalWidth === 0) { console.error("chart missing: " + image.getAttribute("src")); }
});
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (header, column) {
    header.title = "click to sort";
    header.addEventListener("click", function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var ascending = header.getAttribute("data-order") !== "ascending";
      var value = function (row) {
        var text = row.cells[column] ? row.cells[column].textContent.trim() : "";
        var number = parseFloat(text.replace(/^[*\\[]+/, "").replace("\\u2212", "-"));
        return isNaN(number) ? text.toLowerCase() : number;
      };
      rows.sort(function (a, b) {
        var x = value(a), y = value(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
      table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("data-order"); });
      header.setAttribute("data-order", ascending ? "ascending" : "descending");
    });
  });
});
"""
