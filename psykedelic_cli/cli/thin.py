"""``psyk thin``: remove the dead filters of a pruned model for real, predictions unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from psykedelic_cli.cli.app import app
from psykedelic_cli.cli.common import BackendOption, console, start_backend
from psykedelic_cli.errors import PsykError
from psykedelic_cli.outputs import check_model_output


def _check_request(model: Path, output: Path) -> None:
    """The checks that need no TensorFlow, so a bad request fails in a blink."""
    if not model.is_file():
        raise PsykError(f"model file not found: {model}")
    check_model_output(model, output, "thinned")


def _change(before: int, after: int) -> str:
    return f"{before:,}" if before == after else f"{before:,} → {after:,}"


def _share(before: int, after: int) -> str:
    return f"{1 - after / before:.1%} fewer" if before else "—"


def _report_tables(report: dict) -> list[Table]:
    table = Table(title=f"{report['model']}: thinned", show_footer=True)
    table.add_column("layer", footer="model", overflow="fold")
    table.add_column("filters", justify="right", overflow="fold")
    table.add_column("input\nchannels", justify="right", overflow="fold")
    table.add_column("params", justify="right", footer=_change(report["params_before"], report["params_after"]),
                     overflow="fold")
    table.add_column("FLOPs", justify="right", footer=_change(report["flops_before"], report["flops_after"]),
                     overflow="fold")
    table.add_column("dead filters\nkept", justify="right", overflow="fold")
    for row in report["layers"]:
        table.add_row(
            row["layer"],
            _change(row["filters_before"], row["filters_after"]),
            _change(row["channels_before"], row["channels_after"]),
            _change(row["params_before"], row["params_after"]),
            _change(row["flops_before"], row["flops_after"]),
            f"{row['dead_filters_kept']} of {row['dead_filters']}" if row["dead_filters"] else "",
        )
    folded = sum(row["folded_channels"] for row in report["layers"])
    table.caption = (
        f"parameters {_share(report['params_before'], report['params_after'])}, "
        f"FLOPs {_share(report['flops_before'], report['flops_after'])} (Conv2D and Dense, 2 × MACs per example)"
        + (f" · {folded} constant channels folded into biases" if folded else "")
        + f" · written to {report['output']}"
    )
    tables = [table]
    if report["kept"]:
        kept = Table(title="dead filters kept: removing them would change the predictions")
        kept.add_column("layer", overflow="fold")
        kept.add_column("filters", overflow="fold")
        kept.add_column("why", overflow="fold")
        for entry in report["kept"]:
            kept.add_row(entry["layer"], ", ".join(map(str, entry["filters"])), entry["reason"])
        tables.append(kept)
    if report["untouched"]:
        untouched = Table(title="Conv2D layers with dead filters left as they are")
        untouched.add_column("layer", overflow="fold")
        untouched.add_column("dead\nfilters", justify="right", overflow="fold")
        untouched.add_column("why", overflow="fold")
        for entry in report["untouched"]:
            untouched.add_row(entry["layer"], str(entry["dead_filters"]), entry["reason"])
        tables.append(untouched)
    return tables


@app.command(
    epilog="Example: `psyk prune model.keras --mode weight_sorted_neurons --rate 0.5 -o pruned.keras && "
    "psyk thin pruned.keras -o thin.keras`",
)
def thin(
    model: Annotated[Path, typer.Argument(help="A .keras model with dead kernels (psyk's masks or all-zero kernels).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the thinned model (.keras).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")] = False,
    backend: BackendOption = None,
) -> None:
    """Remove dead filters and unused input channels from MODEL: a smaller, faster plain Keras model, same predictions.

    A dead filter goes with its bias entry and the matching channels of the layers that
    follow it channel by channel, down to the next Conv2D or Dense. Across additions a
    channel goes only when it can go in every branch. A dead filter whose output is a
    constant other than 0 (a bias or BatchNormalization shift) is folded into the next
    layer's bias where that is exact, and kept otherwise; the report says why.
    """
    _check_request(model, output)
    start_backend(backend)
    from psykedelic_cli.models.surgery import load_model, save_model
    from psykedelic_cli.models.thinning import thin_model

    thinned, report = thin_model(load_model(model))
    save_model(thinned, output, keep_masks=True)  # plain already: written as it is, whole or not at all
    report = {"source": str(model), "output": str(output), **report}
    if json_output:
        typer.echo(json.dumps(report, indent=2))
    else:
        for table in _report_tables(report):
            console.print(table)
