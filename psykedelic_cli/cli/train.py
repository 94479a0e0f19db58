"""``psyk train`` and ``psyk record``: the staged flow and the analysis of a trained model.

Both commands' options are built from the fields of ``TrainConfig`` and ``RecordConfig``
(``psykedelic_cli.training.config``): each option's name, type, default and help are
declared there once, with the checks and the stored config.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer._click.core import ParameterSource  # typer >= 0.29 vendors click

from psykedelic_cli.cli.app import app
from psykedelic_cli.cli.common import (
    console,
    err_console,
    start_backend,
    stop_gracefully_on_termination,
    store_path,
)
from psykedelic_cli.cli.run_tables import performance_table, runs_table
from psykedelic_cli.errors import PsykError
from psykedelic_cli.outputs import check_output_dir
from psykedelic_cli.training.config import (
    RecordConfig,
    TrainConfig,
    flag_of,
    hints,
    is_sequence,
    option_fields,
    read_config_file,
    scalar_type,
)

_NOT_GIVEN = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)


def _shown_default(value: Any) -> str:
    values = value if isinstance(value, (tuple, list)) else [value]
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def option_parameters(config_class: type) -> list[inspect.Parameter]:
    """One keyword parameter (a Typer option) per option field of ``config_class``.

    Repeatable and sequence fields take a list (``None`` when not given: the field's
    default applies); booleans get ``--name/--no-name``.
    """
    parameters = []
    for item in option_fields(config_class):
        spec = item.metadata["spec"]
        hint = hints(config_class)[item.name]
        kind = scalar_type(hint)
        many = spec.repeatable or is_sequence(hint)
        flags = spec.flags or (flag_of(item),)
        if kind is bool:
            flags = tuple(f"{flag}/--no-{flag[2:]}" for flag in flags)
        if many:
            shown = False if item.name == "compare" or item.default == () else _shown_default(item.default)
            annotation = Annotated[Optional[list[kind]], typer.Option(*flags, help=spec.help, show_default=shown)]
            default = None
        else:
            optional = type(None) in getattr(hint, "__args__", ())
            annotation = Annotated[Optional[kind] if optional else kind, typer.Option(*flags, help=spec.help)]
            default = inspect.Parameter.empty if spec.required else item.default
        parameters.append(inspect.Parameter(item.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                            annotation=annotation))
    return parameters


def option_values(ctx: typer.Context, options: dict, file_values: dict) -> dict:
    """The value of every option: the command line (or its environment variable) first, then
    the ``--config`` file, then the field's default (``None`` for a list not given)."""
    values = {}
    for name, value in options.items():
        given = ctx.get_parameter_source(name) not in _NOT_GIVEN
        values[name] = value if given or name not in file_values else file_values[name]
    return values


def _config(config_class: type, values: dict, **fixed):
    """A config of ``config_class`` from option values; lists of sequence fields become tuples."""
    kwargs = {}
    for item in option_fields(config_class):
        if item.name in fixed or values.get(item.name) is None:
            continue
        value = values[item.name]
        kwargs[item.name] = tuple(value) if is_sequence(hints(config_class)[item.name]) else value
    return config_class(**kwargs, **fixed)


def _command(function, config_class: type, leading: list[inspect.Parameter], trailing: list[inspect.Parameter]):
    """``function(ctx, **options)`` with a signature Typer reads: ``leading``, the config's options, ``trailing``."""
    function.__signature__ = inspect.Signature([*leading, *option_parameters(config_class), *trailing])
    return function


_CTX = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)


def train(ctx: typer.Context, **options) -> None:
    """Train MicroResNets while kernels die by a criterion; compare all criteria; record every run."""
    from psykedelic_cli.pruning.modes import resolve_modes

    config_file = options.pop("config")
    file_values = read_config_file(config_file, TrainConfig) if config_file is not None else {}
    values = option_values(ctx, options, file_values)
    repeated = {name: values.pop(name) for name in ("mode", "l1_penalty", "seed")}
    baseline = values.pop("baseline")
    defaults = TrainConfig()
    base = _config(TrainConfig, values)
    seeds = repeated["seed"] or [defaults.seed]
    runs = [
        base.replace(mode=m, l1_penalty=l1, seed=s)
        for s in seeds
        for m in resolve_modes(repeated["mode"] or [defaults.mode])
        for l1 in repeated["l1_penalty"] or [defaults.l1_penalty]
    ]
    if baseline:
        runs += [base.replace(mode=None, l1_penalty=0.0, seed=s) for s in seeds]
    for run in runs:
        run.validate()
    if base.out_dir is not None:
        check_output_dir(base.out_dir, "--out-dir")

    start_backend(base.backend)
    from psykedelic_cli.training.session import train_all

    with stop_gracefully_on_termination():
        finished = train_all(runs, store_path(ctx), err_console=err_console,
                             on_finished=lambda run: console.print(performance_table(run)))
    if len(finished) > 1:
        console.print(runs_table(finished))
    console.print(f"[dim]{len(finished)} run(s) recorded in {store_path(ctx)}[/dim]")


app.command(
    "train",
    epilog="Examples: `psyk train` (ResNet-20 on digits, mode min_eig) · "
    "`psyk train --dataset cifar10 --depth 32 --epochs 200 --mode min_eig --mode weight --seed 1 --seed 2` · "
    "`psyk train --config grid.toml`",
)(_command(train, TrainConfig, [_CTX], [
    inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        Optional[Path], typer.Option(
            help="TOML file of option values (keys as option names, at the top level or in a \\[train] table); "
            "the command line overrides \\[train], which overrides the top level.")]),
]))


def record(ctx: typer.Context, model: Path, **options) -> None:
    """Analyse a trained model without training: the kernel analysis and the comparison, recorded as a run."""
    if not model.is_file():
        raise PsykError(f"model file not found: {model}")
    config = _config(RecordConfig, options).validate()
    start_backend(config.backend)
    from psykedelic_cli.training.session import record_model

    with stop_gracefully_on_termination():
        run = record_model(model, config, store_path(ctx), err_console=err_console)
    console.print(performance_table(run))


app.command("record", epilog="Example: `psyk record model.keras --dataset cifar10 --compare all`")(
    _command(record, RecordConfig, [_CTX, inspect.Parameter(
        "model", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[
            Path, typer.Argument(help="A trained .keras model (ours or any Keras CNN with Conv2D layers).")])],
        [])
)
