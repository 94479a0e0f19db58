"""``psyk sensitivity``: each Conv2D of a trained model pruned alone over a grid, recorded as a run.

The options are the fields of ``SensitivityConfig`` (``psykedelic_cli.training.config``), built
into the command as for ``psyk record``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

from psykedelic_cli.cli.app import app
from psykedelic_cli.cli.common import (
    console,
    err_console,
    start_backend,
    stop_gracefully_on_termination,
    store_path,
)
from psykedelic_cli.cli.train import _CTX, _command, _config
from psykedelic_cli.errors import PsykError
from psykedelic_cli.training.config import SensitivityConfig


def sensitivity(ctx: typer.Context, model: Path, **options) -> None:
    """Prune each conv layer alone at every value of a grid and record the accuracy it costs.

    For one mode, every Conv2D is pruned by itself at each grid value (--threshold: t of a threshold
    mode or c of a contribution mode; --rate: r of a sorted mode; default: eight values for the
    mode's kind) with every other layer intact, the test accuracy is measured, and the layer is
    restored exactly. Recorded as a run of source "sensitivity"; `psyk report sensitivity` ranks
    the layers over every such run.
    """
    if not model.is_file():
        raise PsykError(f"model file not found: {model}")
    config = _config(SensitivityConfig, options).validate()
    start_backend(config.backend)
    from psykedelic_cli.reports.sensitivity import sensitivity_report
    from psykedelic_cli.reports.tables import to_rich
    from psykedelic_cli.training.sensitivity import record_sensitivity

    with stop_gracefully_on_termination():
        run = record_sensitivity(model, config, store_path(ctx), err_console=err_console)
    ranking, drop, _ = sensitivity_report([run]).tables  # the kernels dead per value: in psyk report sensitivity
    for table in [chunk for table in (ranking, drop) for chunk in to_rich(table, console.width)]:
        console.print(table)
    console.print(f"[dim]run {run['id']} recorded in {store_path(ctx)}[/dim]", highlight=False)


app.command(
    "sensitivity",
    epilog="Examples: `psyk sensitivity model.keras --dataset digits --mode min_eig` · "
    "`psyk sensitivity model.keras --dataset cifar10 --mode weight_sorted_neurons --rate 0.25 --rate 0.5`",
)(_command(sensitivity, SensitivityConfig, [_CTX, inspect.Parameter(
    "model", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[
        Path, typer.Argument(help="A trained .keras model (ours or any Keras CNN with Conv2D layers).")])],
    []))
