"""``psyk report …``: the paper's tables and charts over every matching run of the store.

The report commands share one set of run filters and output options, declared once
below; each command is built from a ``ReportCommand`` row, so adding a report is a
row, not a copy of a command function. ``register_report`` adds a row from any command
module; ``REPORTS`` lists every registered row, which is what ``psyk report html`` puts
on its page.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from psykedelic_cli.cli.app import app
from psykedelic_cli.cli.common import (
    FormatOption,
    ImageFormat,
    ImageFormatOption,
    OutDirOption,
    TableFormat,
    console,
    err_console,
    store_path,
)
from psykedelic_cli.errors import NothingFound
from psykedelic_cli.outputs import check_output_dir

report_app = typer.Typer(
    name="report",
    help="Tables and charts over every matching completed run: mean ± population std, with the number of runs.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(report_app, name="report")


@dataclass(frozen=True)
class RepeatableOption:
    """``--option`` given any number of times, passed on as the list ``name``; for the run
    filters ``name`` is the config field and the list means "any of"."""

    option: str
    name: str
    type: type
    help: str

    @property
    def parameter(self) -> inspect.Parameter:
        option = typer.Option(self.option, help=self.help, metavar=self.option.lstrip("-").upper(), show_default=False)
        annotation = Annotated[Optional[list[self.type]], option]
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


FILTERS = (
    RepeatableOption("--dataset", "dataset", str, "Only runs on this dataset (repeat for several)."),
    RepeatableOption("--model", "model", str, "Only runs of this model, e.g. MicroResNet32."),
    RepeatableOption(
        "--init", "init_mode", str, "Only runs with this init mode (\"default\" or an --init file's stem)."
    ),
    RepeatableOption("--optimizer", "optimizer", str, "Only runs trained with this optimizer."),
    RepeatableOption("--backend", "backend", str, "Only runs on this Keras backend (tensorflow, jax, torch)."),
    RepeatableOption("--lr", "lr", float, "Only runs with this learning rate."),
    RepeatableOption("--epochs", "epochs", int, "Only runs of this many epochs."),
    RepeatableOption("--batch-size", "batch_size", int, "Only runs with this batch size."),
    RepeatableOption("--l1-penalty", "l1_penalty", float, "Only runs with this L1 penalty."),
    RepeatableOption("--threshold", "threshold", float, "Only runs with this significance threshold."),
)
HISTORY_INTERVAL = RepeatableOption(
    "--history-interval", "history_interval", int, "Only runs sampling their history every this many epochs."
)
MODES = RepeatableOption(
    "--mode", "modes", str, "Show only these compared modes (repeat for several; \"None\" is the unpruned baseline)."
)


@dataclass(frozen=True)
class ReportCommand:
    name: str
    kind: str
    """The result kind the report reads; runs without it are skipped."""
    build: str
    """The report function's name in ``psykedelic_cli.reports``, imported when the command runs."""
    help: str
    example: str
    extra: tuple[RepeatableOption, ...] = ()
    chart_modules: tuple[str, ...] = ()
    """Modules the report's charts import beyond matplotlib (the chart workers load them early)."""
    also_reads: tuple[str, ...] = ()
    """Further result kinds the report reads (``kind`` is the first)."""

    @property
    def kinds(self) -> tuple[str, ...]:
        return (self.kind, *self.also_reads)

    def parameters(self) -> list[inspect.Parameter]:
        def option(name: str, annotation, default) -> inspect.Parameter:
            return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)

        return [
            inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
            *(f.parameter for f in (*FILTERS, *self.extra)),
            option("table_format", FormatOption, TableFormat.table),
            option("out_dir", OutDirOption, None),
            option("image_format", ImageFormatOption, ImageFormat.png),
        ]


COMMANDS = (
    ReportCommand(
        "eig-stats", "eig_stats", "eig_stats_report",
        "Complex eigenvalue ratios per dataset × model: all eigenvalues, and per eigenvalue criterion "
        "the target and the pruned complex ratio.",
        "psyk report eig-stats --dataset cifar10 --format latex",
    ),
    ReportCommand(
        "performance", "performance", "performance_report",
        "Compression ratio, score and accuracy per mode, threshold and (dataset, model, init); "
        "the best of each column marked; bar charts per model with --out-dir.",
        "psyk report performance --dataset cifar10 --threshold 1e-4 -f latex -o paper/",
        (MODES,),
    ),
    ReportCommand(
        "set-analysis", "set_analysis", "set_analysis_report",
        "Share of kernels pruned by each combination of criteria; bar chart and Venn diagrams with --out-dir.",
        "psyk report set-analysis --model MicroResNet32 -o charts/ --image-format pdf",
        chart_modules=("matplotlib_venn",),
    ),
    ReportCommand(
        "per-threshold", "pruning_per_threshold", "per_threshold_report",
        "Percentage of kernels each base criterion would prune at thresholds 1e-12 … 1 "
        "(the caption names the rule: own, or the legacy raw |det|).",
        "psyk report per-threshold --dataset cifar100 -o charts/",
    ),
    ReportCommand(
        "per-layer", "pruning_per_layer", "per_layer_report",
        "Active vs total parameters of every conv layer and the active ratio, per mode; "
        "small multiples and a modes × layers heat map with --out-dir.",
        "psyk report per-layer --mode det --mode weight -o charts/",
        (MODES,),
    ),
    ReportCommand(
        "history", "history", "history_report",
        "Accuracy, compression ratio and score per mode over the epochs of the first stage, and the winner per epoch.",
        "psyk report history --history-interval 10 -f markdown",
        (MODES, HISTORY_INTERVAL),
    ),
    ReportCommand(
        "significance", "performance", "significance_report",
        "Which criterion is significantly better: per setting and category, Friedman test over the criteria "
        "paired on the same weights (or trained modes paired by seed), Nemenyi critical difference, "
        "pairwise Wilcoxon with Holm correction, bootstrap intervals; CD diagrams with --out-dir.",
        "psyk report significance --dataset digits -o charts/",
        (MODES,),
        also_reads=("final",),
    ),
    ReportCommand(
        "sensitivity", "sensitivity", "sensitivity_report",
        "Accuracy drop per conv layer pruned alone at each value of a grid (psyk sensitivity, psyk train "
        "--sensitivity), the layers ranked by sensitivity; heat map, line chart and ranking with --out-dir.",
        "psyk report sensitivity --dataset digits --mode min_eig -o charts/",
        (MODES,),
    ),
)


def run_report(ctx: typer.Context, spec: ReportCommand, options: dict) -> None:
    """Query the store, build the report, print it in ``--format`` and write files into ``--out-dir``."""
    import contextlib

    from psykedelic_cli.reports.report import ChartWorkers

    out_dir = options.pop("out_dir")
    image_format: ImageFormat = options.pop("image_format")
    table_format: TableFormat = options.pop("table_format")
    if out_dir is not None:
        check_output_dir(out_dir, "--out-dir")
    # Chart workers start first: they get matplotlib ready while the store is read.
    with ChartWorkers(modules=spec.chart_modules) if out_dir is not None else contextlib.nullcontext() as workers:
        report = _build_report(ctx, spec, options)
        if out_dir is not None:  # every file name is known now: check them before anything is shown
            report.check_outputs(out_dir, image_format.value)
        _show(report, table_format)
        if out_dir is not None:
            _write_files(report, out_dir, image_format, workers)


def _build_report(ctx: typer.Context, spec: ReportCommand, options: dict):
    from psykedelic_cli import reports
    from psykedelic_cli.store import Store

    modes = options.pop("modes", None)
    filters = {name: value or None for name, value in options.items()}
    path = store_path(ctx)
    runs = Store(path).runs(status="completed", kinds=spec.kinds, **filters)
    if not runs:
        wanted = ", ".join(f"{name}={'|'.join(map(str, value))}" for name, value in filters.items() if value)
        raise NothingFound(f"no completed run in {path}" + (f" matches {wanted}" if wanted else ""))
    return getattr(reports, spec.build)(runs, **({"modes": modes or None} if MODES in spec.extra else {}))


def _show(report, table_format: TableFormat) -> None:
    if table_format is TableFormat.table:
        for table in report.rich_tables(console.width):
            console.print(table)
    else:
        typer.echo(report.text(table_format.value), nl=False)


def _write_files(report, out_dir: Path, image_format: ImageFormat, workers) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("drawing charts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as progress:
        task = progress.add_task("charts", total=len(report.charts))
        paths = report.write(out_dir, image_format.value, on_chart=lambda: progress.advance(task), workers=workers)
    for written in paths:
        err_console.print(f"wrote {written}", markup=False, highlight=False, soft_wrap=True)


REPORTS: list[ReportCommand] = []
"""Every registered report command, in registration order."""


def register_report(spec: ReportCommand) -> None:
    """Add ``psyk report <spec.name>`` and list it in ``REPORTS``."""
    REPORTS.append(spec)

    def command(ctx: typer.Context, **options) -> None:
        run_report(ctx, spec, options)

    command.__signature__ = inspect.Signature(spec.parameters())
    command.__name__ = spec.name.replace("-", "_")
    help_text = (
        f"{spec.help}\n\nAggregates every completed run matching the filters (repeat a filter for \"any of\"); "
        f"runs differing in any other setting are never averaged together.\n\n"
        f"Example: [bold]{spec.example}[/]"
    )
    report_app.command(spec.name, help=help_text)(command)


for _spec in COMMANDS:
    register_report(_spec)
