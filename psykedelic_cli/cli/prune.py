"""``psyk prune``: kill the kernels of a saved Keras model by one pruning mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand

from psykedelic_cli.cli.app import app
from psykedelic_cli.cli.common import (
    BackendOption,
    ContributionThresholdOption,
    RateOption,
    ThresholdOption,
    console,
    start_backend,
)
from psykedelic_cli.errors import PsykError
from psykedelic_cli.outputs import check_model_output
from psykedelic_cli.pruning.modes import DEFAULT_CONTRIBUTION_THRESHOLD, DEFAULT_RATE, DEFAULT_THRESHOLD


def _modes_table() -> Table:
    from psykedelic_cli.pruning.modes import MODES

    table = Table(
        title="Pruning modes (t = --threshold, c = --contribution-threshold, r = --rate)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    table.add_column("--mode", style="bold", no_wrap=True)
    table.add_column("rule")
    for name, mode in MODES.items():
        table.add_row(name, mode.description)
    return table


class _PruneCommand(TyperCommand):
    """``--help`` ends with the table of modes, built only when help is shown (start-up stays light)."""

    def format_help(self, ctx, formatter) -> None:
        super().format_help(ctx, formatter)
        Console().print(_modes_table())


def _check_request(model: Path, output: Path, mode: str, threshold: float, contribution_threshold: float, rate: float):
    """The checks that need no TensorFlow, so a bad request fails in a blink."""
    from psykedelic_cli.pruning.modes import get_mode, validate_pruning_parameters

    get_mode(mode)
    validate_pruning_parameters(threshold, contribution_threshold, rate)
    if not model.is_file():
        raise PsykError(f"model file not found: {model}")
    check_model_output(model, output, "pruned")


_REPORT_COLUMNS = (
    ("alive\nkernels", "alive_kernels"),
    ("total\nkernels", "total_kernels"),
    ("active\nparams", "active_params"),
    ("total\nparams", "total_params"),
)


def _report_table(report: dict) -> Table:
    skipped = {entry["layer"]: "×".join(map(str, entry["kernel_shape"])) for entry in report["skipped"]}
    table = Table(title=f"{report['model']}: pruned by {report['mode']}", show_footer=True)
    table.add_column("layer", footer="model", overflow="fold")
    for header, key in _REPORT_COLUMNS:
        table.add_column(header, footer=f"{report[key]:,}", justify="right", overflow="fold")
    if skipped:
        table.add_column("skipped:\nnot square", overflow="fold")
    for row in report["layers"]:
        note = [skipped.get(row["layer"], "")] if skipped else []
        table.add_row(row["layer"], *(f"{row[key]:,}" for _, key in _REPORT_COLUMNS), *note)
    table.caption = f"compression ratio {report['compression_ratio']:.2%} · written to {report['output']}"
    if skipped:
        count = f"{len(skipped)} of {len(report['layers'])} layers"
        table.caption += f" · {count} skipped ({report['mode']} needs square kernels)"
    return table


@app.command(
    cls=_PruneCommand,
    epilog="Example: `psyk prune model.keras --mode min_eig --threshold 1e-3 --output pruned.keras`",
)
def prune(
    model: Annotated[Path, typer.Argument(help="A .keras model file (ours, or any Keras CNN with Conv2D layers).")],
    mode: Annotated[str, typer.Option("--mode", "-m", help="The pruning mode (the list is below).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the pruned model (.keras).")],
    threshold: ThresholdOption = DEFAULT_THRESHOLD,
    contribution_threshold: ContributionThresholdOption = DEFAULT_CONTRIBUTION_THRESHOLD,
    rate: RateOption = DEFAULT_RATE,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the random modes (default 0).")] = None,
    keep_masks: Annotated[
        bool,
        typer.Option(help="Keep our masked layers in the output (default: plain Keras Conv2D, dead kernels zero)."),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of a table.")] = False,
    backend: BackendOption = None,
) -> None:
    """Kill the kernels a pruning mode marks in every Conv2D of MODEL; write the pruned model; report what is left.

    Conv2D layers are found however nested (sub-models, wrappers, custom layers) and
    named by their path (tower_a/conv). Eigenvalue and determinant modes skip layers
    with non-square kernels and list them as skipped ("skipped" in --json). A Conv2D
    with LoRA on is pruned by its effective kernel and written with LoRA merged (off).
    """
    _check_request(model, output, mode, threshold, contribution_threshold, rate)
    start_backend(backend)
    from psykedelic_cli.models.surgery import load_model, merge_lora, prune_model, save_model

    network = merge_lora(load_model(model))  # the report counts what is written: LoRA merged, its factors gone
    report = prune_model(
        network, mode, threshold=threshold, contribution_threshold=contribution_threshold, rate=rate, seed=seed
    )
    save_model(network, output, keep_masks=keep_masks)
    report = {"model": network.name, "source": str(model), "output": str(output), **report}
    if json_output:
        typer.echo(json.dumps(report, indent=2))
    else:
        console.print(_report_table(report))
