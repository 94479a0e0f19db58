"""``psyk train`` and ``psyk record``: the staged flow and the analysis of a trained model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from psykedelic_cli.cli.app import app
from psykedelic_cli.cli.common import (
    CompareOption,
    ContributionThresholdOption,
    DataDirOption,
    RateOption,
    ThresholdOption,
    console,
    err_console,
    import_tensorflow,
    stop_gracefully_on_termination,
    store_path,
)
from psykedelic_cli.cli.run_tables import performance_table, runs_table
from psykedelic_cli.errors import PsykError
from psykedelic_cli.store.schema import BASE_CRITERIA
from psykedelic_cli.training.config import OPTIMIZERS, TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULTS = TrainConfig()


def _load_config_file(ctx: typer.Context, param, path: Optional[Path]) -> Optional[Path]:
    """``--config FILE``: a TOML table of option defaults; command-line values win."""
    if path is None:
        return None
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PsykError(f"--config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PsykError(f"--config {path} is not a readable TOML file: {exc}") from None
    data = data.get("train", data)
    known = {p.name for p in ctx.command.params if p.name != "config"}
    defaults = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in known:
            raise PsykError(f"--config {path}: unknown option '{key}'; allowed: {', '.join(sorted(known))}")
        defaults[name] = value
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path


def _or_default(values: Optional[list], default: tuple | list) -> list:
    return list(values) if values else list(default)


ModeHelp = "Pruning mode to train with (repeatable; 'all' = all 27 modes; `psyk prune --help` lists them)."


@app.command(
    epilog="Examples: `psyk train` (ResNet-20 on digits, mode min_eig) · "
    "`psyk train --dataset cifar10 --depth 32 --epochs 200 --mode min_eig --mode weight --seed 1 --seed 2`"
)
def train(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(help="digits | cifar10 | cifar100 | tiny-imagenet.")] = DEFAULTS.dataset,
    data_dir: DataDirOption = None,
    depth: Annotated[
        int, typer.Option(help="ResNet depth: 6m+2 (thin: 20, 32, 44, 56, 110) or 50/101/152.")
    ] = DEFAULTS.depth,
    epochs: Annotated[int, typer.Option(help="Total epochs, split over --steps stages.")] = DEFAULTS.epochs,
    steps: Annotated[int, typer.Option(help="Number of stages (≥ 2).")] = DEFAULTS.steps,
    batch_size: Annotated[int, typer.Option(help="Mini-batch size.")] = DEFAULTS.batch_size,
    lr: Annotated[float, typer.Option(help="Base learning rate (step schedule ×0.1 after epoch 80, …).")] = DEFAULTS.lr,
    optimizer: Annotated[str, typer.Option(help=" | ".join(OPTIMIZERS))] = DEFAULTS.optimizer,
    momentum: Annotated[float, typer.Option(help="SGD momentum.")] = DEFAULTS.momentum,
    decay: Annotated[
        float, typer.Option(help="Inverse-time learning-rate decay per iteration (0 = off).")
    ] = DEFAULTS.decay,
    l1_penalty: Annotated[
        Optional[list[float]],
        typer.Option(
            help=f"L1 penalty on conv kernels in the pruning stages (repeatable; default {DEFAULTS.l1_penalty:g})."
        ),
    ] = None,
    mode: Annotated[Optional[list[str]], typer.Option(help=ModeHelp)] = None,
    compare: CompareOption = None,
    threshold: ThresholdOption = DEFAULTS.threshold,
    contribution_threshold: ContributionThresholdOption = DEFAULTS.contribution_threshold,
    rate: RateOption = DEFAULTS.rate,
    history_interval: Annotated[
        int, typer.Option(help="Compare modes every N epochs of stage 1 (0 = off).")
    ] = DEFAULTS.history_interval,
    init: Annotated[Optional[Path], typer.Option(help="Initial weights: a .keras model or .weights.h5 file.")] = None,
    residual: Annotated[bool, typer.Option("--residual/--no-residual", help="Keep the residual connections.")] = True,
    baseline: Annotated[
        bool, typer.Option(help="Also train and record the uncompressed ResNet (no L1, no pruning).")
    ] = False,
    stop_after_pruning: Annotated[bool, typer.Option(help="Skip the last (fine-tuning) stage.")] = False,
    patience: Annotated[
        int, typer.Option(help="Early-stopping patience (epochs) in the last stage.")
    ] = DEFAULTS.patience,
    save_model: Annotated[
        bool, typer.Option(help="Save the trained model (.keras) in the run's output folder.")
    ] = False,
    out_dir: Annotated[
        Path, typer.Option(help="Per-run charts (and models) go to OUT_DIR/<run id>/.")
    ] = Path("psyk-out"),
    seed: Annotated[Optional[list[int]], typer.Option(help="Random seed (repeatable: one run per seed).")] = None,
    distribute: Annotated[
        str, typer.Option(help="none | mirrored (every local GPU, or the CPU).")
    ] = DEFAULTS.distribute,
    config: Annotated[
        Optional[Path],
        typer.Option(help="TOML file of option defaults (keys as option names); command-line values win.",
                     is_eager=True, callback=_load_config_file),
    ] = None,
) -> None:
    """Train MicroResNets while kernels die by a criterion; compare all criteria; record every run."""
    base = TrainConfig(
        dataset=dataset, data_dir=data_dir, depth=depth, epochs=epochs, steps=steps, batch_size=batch_size, lr=lr,
        optimizer=optimizer, momentum=momentum, decay=decay, threshold=threshold,
        contribution_threshold=contribution_threshold, rate=rate, history_interval=history_interval, init=init,
        residual=residual, stop_after_pruning=stop_after_pruning, patience=patience, save_model=save_model,
        out_dir=out_dir, distribute=distribute, compare=tuple(_or_default(compare, BASE_CRITERIA)),
    )
    from psykedelic_cli.pruning.modes import resolve_modes

    seeds = _or_default(seed, [DEFAULTS.seed])
    runs = [
        base.replace(mode=m, l1_penalty=l1, seed=s)
        for s in seeds
        for m in resolve_modes(_or_default(mode, [DEFAULTS.mode]))
        for l1 in _or_default(l1_penalty, [DEFAULTS.l1_penalty])
    ]
    if baseline:
        runs += [base.replace(mode=None, l1_penalty=0.0, seed=s) for s in seeds]
    for run in runs:
        run.validate()

    import_tensorflow()
    from psykedelic_cli.training.session import train_all

    with stop_gracefully_on_termination():
        finished = train_all(runs, store_path(ctx), err_console=err_console,
                             on_finished=lambda run: console.print(performance_table(run)))
    if len(finished) > 1:
        console.print(runs_table(finished))
    console.print(f"[dim]{len(finished)} run(s) recorded in {store_path(ctx)}[/dim]")


@app.command(epilog="Example: `psyk record model.keras --dataset cifar10 --compare all`")
def record(
    ctx: typer.Context,
    model: Annotated[Path, typer.Argument(help="A trained .keras model (ours or any Keras CNN with Conv2D layers).")],
    dataset: Annotated[str, typer.Option(help="The dataset the model was trained on.")],
    data_dir: DataDirOption = None,
    compare: CompareOption = None,
    threshold: ThresholdOption = DEFAULTS.threshold,
    contribution_threshold: ContributionThresholdOption = DEFAULTS.contribution_threshold,
    rate: RateOption = DEFAULTS.rate,
    batch_size: Annotated[int, typer.Option(help="Evaluation batch size.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the random modes and the data split.")] = 0,
) -> None:
    """Analyse a trained model without training: the kernel analysis and the comparison, recorded as a run."""
    if not model.is_file():
        raise PsykError(f"model file not found: {model}")
    config = TrainConfig(
        dataset=dataset, data_dir=data_dir, compare=tuple(_or_default(compare, BASE_CRITERIA)), threshold=threshold,
        contribution_threshold=contribution_threshold, rate=rate, batch_size=batch_size, seed=seed, mode=None,
        out_dir=None,
    ).validate()
    import_tensorflow()
    from psykedelic_cli.training.session import record_model

    with stop_gracefully_on_termination():
        run = record_model(model, config, store_path(ctx), err_console=err_console)
    console.print(performance_table(run))
