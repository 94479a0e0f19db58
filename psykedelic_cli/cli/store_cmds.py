"""``psyk list-experiments | show | delete | mark-stale | merge | import-legacy``: the experiment store."""

from __future__ import annotations

import csv
import enum
import inspect
import io
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from psykedelic_cli.cli.app import app
from psykedelic_cli.cli.common import console, store_path
from psykedelic_cli.cli.run_tables import percent, performance_table, timings_text
from psykedelic_cli.errors import PsykError
from psykedelic_cli.store import Store
from psykedelic_cli.store.liveness import SILENT_AFTER, mark_stale, stale_reason, stale_runs
from psykedelic_cli.store.schema import RESULT_KINDS, STATUSES

LIST_COLUMNS = (
    "id", "created_at", "status", "model", "dataset", "backend", "mode", "compared",
    "threshold", "l1_penalty", "seed", "accuracy", "compression_ratio", "stale",
)

WIDE = 250


class ListFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


class ShowFormat(str, enum.Enum):
    table = "table"
    json = "json"


def _reflowed(command):
    """Join each docstring paragraph into one line: rich help keeps source line breaks."""
    paragraphs = inspect.cleandoc(command.__doc__).split("\n\n")
    command.__doc__ = "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)
    return command


def _scientific(value) -> str:
    return "—" if value is None else ("0" if value == 0 else f"{value:.0e}")


def _plain(value) -> str:
    return "—" if value is None else str(value)


def _date(stamp: str | None) -> str:
    return (stamp or "")[:16].replace("T", " ") or "—"


def _print_whole(table: Table) -> None:
    # At its natural width: squeezing into a narrow terminal (or rich's 80 columns for a
    # pipe) would cut run ids, paths and numbers.
    Console(width=WIDE).print(table)


def _print_fitted(table: Table) -> None:
    """``table`` in the terminal's width, or where rich would drop or cut columns to fit it,
    in the least width that keeps every column whole (the terminal then wraps its lines)."""
    needed = Measurement.get(console, console.options.update(max_width=WIDE), table).minimum
    if needed <= console.width:
        console.print(table)
    else:
        Console(width=needed, file=console.file, color_system=console.color_system).print(table)


def _now() -> datetime:
    # The CLI boundary is where the library's time argument comes from.
    return datetime.now(timezone.utc)


def _shown_status(status: str | None, stale: str | None) -> str:
    return f"{status} (stale: {stale})" if stale else _plain(status)


def _list_row(summary: dict, stale: str | None = None) -> dict:
    """One run as list-experiments shows it; ``stale`` is why a running run counts as stale."""
    config, headline = summary["config"], summary["headline"]
    return {
        "id": summary["id"],
        "created_at": summary["created_at"],
        "status": summary["status"],
        "model": config.get("model"),
        "dataset": config.get("dataset"),
        "backend": config.get("backend"),
        "mode": config.get("mode"),
        "compared": len(config.get("compare") or []),
        "threshold": config.get("threshold"),
        "l1_penalty": config.get("l1_penalty"),
        "seed": config.get("seed"),
        "accuracy": headline["accuracy"],
        "compression_ratio": headline["compression_ratio"],
        "stale": stale,
    }


LIST_HEADER = (
    "id", "date", "status", "model", "dataset", "backend", "modes", "threshold", "l1", "seed", "accuracy",
    "compression",
)
RIGHT_ALIGNED = {"threshold", "l1", "seed", "accuracy", "compression"}
STATUS_STYLES = {"completed": "", "running": "yellow", "failed": "red", "interrupted": "magenta"}
STALE_STYLE = "bold yellow"


def _table_cells(row: dict, source: str | None = None) -> tuple[str, ...]:
    """A ``_list_row`` as the cells of ``LIST_HEADER``: the trained and compared modes in one (for a
    run of ``psyk sensitivity``, the mode its layers were pruned by)."""
    modes = _plain(row["mode"]) + (f" +{row['compared']}" if row["compared"] else "")
    if source == "sensitivity":
        modes = f"sensitivity: {modes}"
    return (
        row["id"], _date(row["created_at"]), _shown_status(row["status"], row["stale"]), _plain(row["model"]),
        _plain(row["dataset"]), _plain(row["backend"]),
        modes, _scientific(row["threshold"]), _scientific(row["l1_penalty"]), _plain(row["seed"]),
        percent(row["accuracy"]), percent(row["compression_ratio"]),
    )


def _list_table(summaries: list[dict], path: Path, stale: dict[str, str]) -> Text:
    """The runs as an aligned table, one styled line per run (``stale``: run id -> reason).

    Built as one rich Text rather than a rich Table: a Table measures and renders every
    cell (about 1 ms per row), which made listing 1,000 runs take over a second.
    """
    rows = [_table_cells(_list_row(summary, stale.get(summary["id"])), summary.get("source")) for summary in summaries]
    widths = [max(len(cell) for cell in column) for column in zip(LIST_HEADER, *rows)]

    def line(cells) -> str:
        return "   ".join(
            cell.rjust(width) if name in RIGHT_ALIGNED else cell.ljust(width)
            for name, cell, width in zip(LIST_HEADER, cells, widths)
        ).rstrip() + "\n"

    text = Text(f"{len(summaries)} runs in {path} (modes: the mode trained with, +N compared)\n\n", style="italic")
    text.append(line(LIST_HEADER), style="bold")
    text.append("─" * (sum(widths) + 3 * (len(widths) - 1)) + "\n")
    for summary, row in zip(summaries, rows):
        style = STALE_STYLE if summary["id"] in stale else STATUS_STYLES.get(summary["status"], "")
        text.append(line(row), style=style)
    return text


@app.command("list-experiments")
@_reflowed
def list_experiments(
    ctx: typer.Context,
    dataset: Annotated[Optional[str], typer.Option(help="Only runs on this dataset (e.g. cifar10).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Only runs of this model (e.g. MicroResNet32).")] = None,
    mode: Annotated[Optional[str], typer.Option(help="Only runs trained with this pruning mode.")] = None,
    backend: Annotated[Optional[str], typer.Option(help="Only runs on this Keras backend (e.g. jax).")] = None,
    status: Annotated[Optional[str], typer.Option(help=f"Only runs with this status: {', '.join(STATUSES)}.")] = None,
    output: Annotated[
        ListFormat, typer.Option("--format", "-f", help="A rich table, JSON run documents, or CSV.")
    ] = ListFormat.table,
) -> None:
    """One line per run, with its headline accuracy and compression.

    Columns: id, date, status, model, dataset, Keras backend, modes (trained + compared), threshold,
    L1 penalty, seed, accuracy and compression ratio (of the final model, else of the
    trained mode in the comparison, else of the unpruned baseline). A running run whose
    process is gone shows as "running (stale: …)" (the stale field of the CSV and the
    JSON says why); see psyk mark-stale.

    Example: [bold]psyk list-experiments --dataset cifar10 --status completed[/bold]

    Example: [bold]psyk list-experiments -f json > runs.json[/bold]
    """
    store = Store(store_path(ctx))
    filters = {"status": status, "dataset": dataset, "model": model, "mode": mode, "backend": backend}
    if output is ListFormat.json:
        now = _now()
        typer.echo(json.dumps([_with_liveness(doc, now) for doc in store.runs(**filters)], indent=2))
        return
    summaries = store.summaries(**filters)
    stale = stale_runs(store, now=_now()) if any(s["status"] == "running" for s in summaries) else {}
    if output is ListFormat.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=LIST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_list_row(summary, stale.get(summary["id"])) for summary in summaries)
        typer.echo(buffer.getvalue(), nl=False)
    elif summaries:
        console.print(_list_table(summaries, store.path, stale), soft_wrap=True, highlight=False, end="")
    else:
        console.print(f"no runs in {store.path}" + (" match" if any(filters.values()) else ""))


def _with_liveness(doc: dict, now: datetime) -> dict:
    """The run document as JSON output shows it: with ``"stale"``, why a running run counts
    as stale (:func:`~psykedelic_cli.store.liveness.stale_reason`), else null."""
    return {**doc, "stale": stale_reason(doc, now=now)}


def _describe_result(kind: str, value) -> str:
    """A one-line description of what one result kind holds."""
    if kind == "learning_curve":
        return f"{len(value.get('epoch', []))} epochs"
    if kind in ("performance", "pruning_per_layer"):
        layers = max((len(rows) for rows in value.values() if isinstance(rows, list)), default=None)
        return f"{len(value)} modes" + (f" × {layers} layers" if layers is not None else "")
    if kind in ("history", "per_layer_history", "pruning_stages"):
        return f"{len(value)} steps, epochs {value[0]['epoch']}–{value[-1]['epoch']}" if value else "empty"
    if kind == "timings":
        return timings_text(value)
    if kind == "eig_stats":
        return f"complex eigenvalues {percent(value.get('complex_ratio'))}"
    if kind == "set_analysis":
        return f"{len(value.get('shares', {}))} combinations of {len(value.get('criteria', []))} criteria"
    if kind == "pruning_per_threshold":
        return f"{len(value.get('thresholds', []))} thresholds, rule {value.get('rule')}"
    if kind == "sensitivity":
        layers = value.get("layers", [])
        skipped = sum(1 for layer in layers if layer.get("skipped"))
        return (f"{value.get('mode')}: {len(layers)} layers × {len(value.get('grid', []))} values of "
                f"{value.get('parameter')} ({_grid_text(value.get('grid', []))}), "
                f"{value.get('evaluations')} evaluations" + (f", {skipped} layers skipped" if skipped else ""))
    if kind == "final":
        return f"accuracy {percent(value.get('accuracy'))}, compression {percent(value.get('compression_ratio'))}"
    return ", ".join(value) if isinstance(value, dict) else type(value).__name__


def _grid_text(grid: list) -> str:
    return ", ".join(f"{value:g}" for value in grid)


@app.command()
@_reflowed
def show(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="A run id or any unique prefix of one.", metavar="RUN")],
    output: Annotated[
        ShowFormat, typer.Option("--format", "-f", help="Rich tables, or the run document as JSON.")
    ] = ShowFormat.table,
) -> None:
    """One run: its config, its error or warnings, and a summary of its results.

    A running run whose process is gone shows as "running (stale: …)" (in JSON, its
    stale field says why; null for any other run).

    Example: [bold]psyk show 20261126T0112[/bold]
    """
    doc = _with_liveness(Store(store_path(ctx)).get_run(run), _now())
    if output is ShowFormat.json:
        typer.echo(json.dumps(doc, indent=2))
        return
    status = _shown_status(doc.get("status"), doc["stale"])
    console.print(Text.assemble((f"run {doc['id']}", "bold"), f"  {status}  (source {doc.get('source')})"))
    host = doc.get("host") or {}
    pid = f", pid {host['pid']}" if host.get("pid") is not None else ""
    console.print(
        f"created {_date(doc.get('created_at'))}, finished {_date(doc.get('finished_at'))} UTC"
        f" on {host.get('hostname', '—')}{pid} ({host.get('platform', '—')})"
    )
    # Text, not markup: an error or a path may hold square brackets.
    if doc.get("error"):
        console.print(Text.assemble(("error: ", "red"), str(doc["error"])))
    for warning in doc.get("warnings") or []:
        console.print(Text.assemble(("warning: ", "yellow"), str(warning)))
    config = {
        name: ", ".join(map(str, value)) if isinstance(value, list) else _plain(value)
        for name, value in (doc.get("config") or {}).items()
    }
    console.print(_field_table("config", config))
    results = doc.get("results") or {}
    kinds = [k for k in RESULT_KINDS if k in results] + [k for k in results if k not in RESULT_KINDS]
    described = {kind: _describe_result(kind, results[kind]) for kind in kinds}
    console.print(_field_table("results", described) if results else "no results yet")
    if results.get("performance"):
        _print_fitted(performance_table(doc))
    if results.get("sensitivity"):
        from psykedelic_cli.reports.sensitivity import sensitivity_report
        from psykedelic_cli.reports.tables import to_rich

        for table in to_rich(sensitivity_report([doc]).tables[0], console.width):  # the layers ranked
            console.print(table)


def _field_table(title: str, rows: dict[str, str]) -> Table:
    """Names and values: the names whole, a value folded onto more lines where the terminal
    is too narrow for it (never cut short)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, show_header=False)
    table.add_column("name", no_wrap=True, min_width=max(map(len, rows), default=0))
    table.add_column("value", overflow="fold")
    for name, value in rows.items():
        table.add_row(name, Text(value))
    return table


@app.command()
@_reflowed
def delete(
    ctx: typer.Context,
    runs: Annotated[list[str], typer.Argument(help="Run ids or unique prefixes.", metavar="RUN")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete runs from the store (asks first unless --yes).

    Example: [bold]psyk delete 20261126T011234-3f9c2a --yes[/bold]
    """
    store = Store(store_path(ctx))
    ids = sorted({store.get_run(run, kinds=())["id"] for run in runs})
    if not yes:
        _confirm(f"Delete {len(ids)} run(s) ({', '.join(ids)}) from {store.path}?", "delete", "deleted")
    deleted = store.delete_runs(ids)
    console.print(f"deleted {deleted} run(s) from {store.path}")


def _confirm(question: str, verb: str, done: str) -> None:
    """Ask ``question``; PsykError when no answer can be read (exit 2: pass --yes) or it is no (exit 1)."""
    try:
        confirmed = typer.confirm(question)
    except typer.Abort:
        raise PsykError(f"no confirmation could be read: pass --yes to {verb} without asking") from None
    if not confirmed:
        raise PsykError(f"nothing {done}", exit_code=1)


@app.command("mark-stale")
@_reflowed
def mark_stale_command(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Mark without asking.")] = False,
    silent_hours: Annotated[
        float, typer.Option(min=0, help="A run on another machine is stale after this many hours without a heartbeat.")
    ] = SILENT_AFTER.total_seconds() / 3600,
) -> None:
    """Mark running runs whose process is gone as interrupted, keeping their results.

    A run on this machine is stale when its process no longer exists (killed by SIGKILL,
    out of memory, the machine restarted); one on another machine when it has written
    nothing for --silent-hours. Each gets status interrupted and an error saying why.
    Asks first unless --yes.

    Example: [bold]psyk mark-stale --yes[/bold]
    """
    store = Store(store_path(ctx))
    silent_after = timedelta(hours=silent_hours)
    stale = stale_runs(store, now=_now(), silent_after=silent_after)
    if not stale:
        console.print(f"no stale runs in {store.path}")
        return
    for run_id, reason in sorted(stale.items()):
        console.print(f"{run_id}  running (stale: {reason})", highlight=False)
    if not yes:
        _confirm(f"Mark {len(stale)} run(s) in {store.path} as interrupted?", "mark", "marked")
    marked = mark_stale(store, sorted(stale), now=_now(), silent_after=silent_after)
    console.print(f"marked {len(marked)} run(s) interrupted in {store.path}")


@app.command()
@_reflowed
def merge(
    ctx: typer.Context,
    others: Annotated[
        list[Path], typer.Argument(help="Stores made elsewhere (psyk-store.json files).", metavar="OTHER_STORE")
    ],
) -> None:
    """Bring in the runs of other stores (e.g. from other machines).

    New run ids are added; a known one is replaced only by a newer copy (updated_at).
    Merging the same store twice adds nothing.

    Example: [bold]psyk merge gpu-box/psyk-store.json laptop/psyk-store.json[/bold]
    """
    from psykedelic_cli.store.merge import merge_stores

    store = Store(store_path(ctx))
    table = Table(title=f"merged into {store.path}", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("store", "added", "updated", "skipped"):
        table.add_column(name, justify="left" if name == "store" else "right")
    for counts in merge_stores(store, others):
        table.add_row(str(counts.source), str(counts.added), str(counts.updated), str(counts.skipped))
    _print_whole(table)


@app.command("import-legacy")
@_reflowed
def import_legacy_command(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(help="The original psykedelic's experiments.json file(s).", metavar="FILE")
    ],
) -> None:
    """Import the original psykedelic's experiments.json as runs.

    Every file is checked first; a malformed one is an error naming the JSON path of the
    problem and nothing is written. Importing the same runs again adds nothing; runs an
    earlier psyk imported are corrected in place.

    Example: [bold]psyk import-legacy experiments.json[/bold]
    """
    from rich.progress import Progress

    from psykedelic_cli.store.legacy import import_legacy

    store = Store(store_path(ctx))
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("reading legacy runs", total=None)
        outcome = import_legacy(store, files, lambda done, total: progress.update(task, completed=done, total=total))
    per_group = Counter((doc["config"]["dataset"], doc["config"]["model"]) for doc in outcome.imported)
    table = Table(title=f"imported into {store.path}", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("dataset", "model", "runs"):
        table.add_column(name, justify="right" if name == "runs" else "left")
    for (dataset, model), count in sorted(per_group.items()):
        table.add_row(dataset, model, str(count))
    table.add_section()
    table.add_row("total", "", str(len(outcome.imported)))
    table.add_row("corrected (imported by an earlier psyk)", "", str(len(outcome.corrected)))
    table.add_row("skipped (already imported)", "", str(outcome.skipped))
    _print_whole(table)
