"""``psyk report html -o DIR``: every registered report that has runs, on one self-contained page."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

from psykedelic_cli.cli.common import ImageFormat, err_console, store_path
from psykedelic_cli.cli.report import FILTERS, HISTORY_INTERVAL, MODES, REPORTS, report_app
from psykedelic_cli.errors import NothingFound, PsykError
from psykedelic_cli.outputs import check_output_dir


def write_results_page(ctx: typer.Context, options: dict) -> None:
    """Build every report of ``REPORTS`` over the matching runs and write the page and its charts."""
    from psykedelic_cli import reports
    from psykedelic_cli.reports.html import IMAGE_FORMATS, Section, write_page
    from psykedelic_cli.reports.report import ChartWorkers
    from psykedelic_cli.store import Store

    out_dir: Path = options.pop("out_dir")
    image_format: ImageFormat = options.pop("image_format")
    if image_format.value not in IMAGE_FORMATS:
        raise PsykError(f"--image-format {image_format.value}: a browser page shows {' or '.join(IMAGE_FORMATS)}")
    check_output_dir(out_dir, "--out-dir")
    modes = options.pop("modes") or None
    history_interval = options.pop("history_interval") or None
    filters = {name: value or None for name, value in options.items()}
    path = store_path(ctx)
    store = Store(path)
    modules = tuple(dict.fromkeys(m for spec in REPORTS for m in spec.chart_modules))
    with ChartWorkers(modules=modules) as workers:
        sections = []
        for spec in REPORTS:
            wanted = {**filters, **({"history_interval": history_interval} if HISTORY_INTERVAL in spec.extra else {})}
            runs = store.runs(status="completed", kinds=spec.kinds, **wanted)
            try:
                if not runs:
                    raise NothingFound("no matching completed run")
                report = getattr(reports, spec.build)(runs, **({"modes": modes} if MODES in spec.extra else {}))
            except NothingFound as exc:
                sections.append(Section(spec.name, None, missing=str(exc)))
                continue
            sections.append(Section(spec.name, report, runs))
        if all(section.report is None for section in sections):
            raise NothingFound(f"no completed run in {path} has results for any report")
        behind = {run["id"] for section in sections for run in section.runs}
        runs_by_id = {
            run["id"]: run for run in store.runs(status="completed", kinds=("learning_curve",)) if run["id"] in behind
        }
        shown = {**filters, "modes": modes, "history_interval": history_interval}
        paths = write_page(
            out_dir, sections, runs=runs_by_id, filters=shown, store=str(path), image_format=image_format.value,
            draw=lambda jobs: _draw(workers, jobs),
        )
    for written in paths:
        err_console.print(f"wrote {written}", markup=False, highlight=False, soft_wrap=True)


def _draw(workers, jobs: list[tuple]) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from psykedelic_cli.reports.charts import save_chart

    columns = (TextColumn("drawing charts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        task = progress.add_task("charts", total=len(jobs))
        workers.run(save_chart, jobs, on_done=lambda: progress.advance(task))


def _parameters() -> list[inspect.Parameter]:
    out_dir = typer.Option("--out-dir", "-o", help="The folder that receives index.html and its charts.")
    image_format = typer.Option("--image-format", help="Chart files beside the page: svg or png.")
    keyword = inspect.Parameter.KEYWORD_ONLY
    return [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        *(option.parameter for option in (*FILTERS, MODES, HISTORY_INTERVAL)),
        inspect.Parameter("out_dir", keyword, annotation=Annotated[Path, out_dir]),
        inspect.Parameter(
            "image_format", keyword, default=ImageFormat.svg, annotation=Annotated[ImageFormat, image_format]
        ),
    ]


def html(ctx: typer.Context, **options) -> None:
    write_results_page(ctx, options)


html.__signature__ = inspect.Signature(_parameters())
report_app.command(
    "html",
    help="Every report that has runs on one self-contained page (DIR/index.html, charts beside it, no network): "
    "sortable tables, charts, the filters used, every number linked to its runs, and per run its config, "
    "versions and learning curve. Takes the report filters; --mode and --history-interval apply where the "
    "reports take them.\n\nExample: [bold]psyk report html --dataset digits -o site/[/]",
)(html)
